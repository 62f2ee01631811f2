"""The ``parity`` console script: the same routines, and one-line errors with exit code 2."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from parity.cli import main
from parity.core.config import default_inputs
from parity.judge.tolerances import FP16_LSTM_KEPT_MAX_SIZE_RATIO, FP16_MAX_SIZE_RATIO

FIXTURES = default_inputs()
RECIPES = Path(__file__).parent.parent / "fixtures" / "recipes"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny preset exported by ``parity export``, and what the command printed (a
    module-scoped fixture cannot use capsys, so stdout is redirected here)."""
    out = tmp_path_factory.mktemp("cli") / "tiny.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "--preset", "tiny", "-o", str(out)]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def tiny_export(exported: tuple[Path, str]) -> Path:
    return exported[0]


# Scope prefixes of the trained model (the published graph) and of our TorchScript export.
TRAINED_TO_OUR_SCOPES = {
    "/decoder/decoder/": "/decoder/",
    "/encoder/bert/": "/bert/",
    "/encoder/predictor/": "/",
    "/encoder/": "/",  # the rest of the encoder (text encoder, F0 and N blocks) sits at the top
}


def test_export_writes_a_model_and_prints_the_attempt(exported: tuple[Path, str]) -> None:
    import onnx

    path, printed = exported
    assert path.stat().st_size > 1_000_000
    assert not list(path.parent.glob(".*.tmp"))
    # One line for the attempt: exporter/STFT, where the file came from, and its figures,
    # which must be the written file's.
    (line,) = printed.splitlines()
    attempt = re.fullmatch(
        r"torchscript/exact: exported in \d+\.\ds, opset (\d+), (\d+) nodes, "
        r"([\d.]+) MB, \d+ exporter warnings",
        line,
    )
    assert attempt, line
    graph = onnx.load(str(path), load_external_data=False)
    assert int(attempt[1]) == next(o.version for o in graph.opset_import if o.domain == "")
    assert int(attempt[2]) == len(graph.graph.node)
    assert attempt[3] == f"{path.stat().st_size / 1e6:.1f}"


def test_compare_reports_the_fp32_check_of_the_export(
    tiny_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "parity.json"
    code = main(
        [
            "compare",
            str(tiny_export),
            "--preset",
            "tiny",
            "--inputs",
            str(FIXTURES),
            "--requests",
            "sentence",
            "--json",
            str(report),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "staged parity of 'sentence' against PyTorch float32: PASS" in out
    assert "forced generator" in out
    assert '"passed": true' in report.read_text()
    # Without a store every run is computed, and stderr says so: PyTorch free-running and
    # forced, ONNX Runtime once.
    assert "runs-torch 2 in" in err
    assert "runs-onnxruntime 1 in" in err
    assert err.rstrip().endswith("read back 0")


def test_compare_against_other_weights_fails_with_a_report(
    tiny_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "compare",
            str(tiny_export),
            "--preset",
            "tiny",
            "--seed",
            "1",
            "--inputs",
            str(FIXTURES),
            "--requests",
            "sentence",
        ]
    )
    assert code == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["compare", "missing.onnx", "--preset", "tiny"], "no such ONNX file", id="missing-model"
        ),
        pytest.param(
            ["export", "--preset", "tiny", "--checkpoint", "nope.pth", "-o", "x.onnx"],
            "no such file",
            id="missing-checkpoint",
        ),
        pytest.param(
            ["export", "--preset", "tiny", "--checkpoint", "k.pth", "--seed", "3", "-o", "x.onnx"],
            "seed 3 is for random weights, but the weights come from k.pth",
            id="seed-beside-a-checkpoint",
        ),
        pytest.param(
            ["quantize", "in.onnx", "-o", "x.onnx", "--recipe", "nope.json"],
            "cannot read the recipe nope.json",
            id="missing-recipe",
        ),
        pytest.param(
            ["quantize", "in.onnx", "-o", "x.onnx", "--recipe", "cpu.json", "--mode", "qdq"],
            "--mode and --recipe cpu.json both set the recipe",
            id="recipe-and-flags",
        ),
        pytest.param(
            ["quantize", "in.onnx", "-o", "x.onnx", "--variant", "qdq", "--per-channel"],
            "--per-channel and --variant qdq both set the recipe",
            id="variant-and-flags",
        ),
        pytest.param(
            ["quantize", "in.onnx", "-o", "x.onnx", "--variant", "int4"],
            "no int8 variant named 'int4'; the registry has published, dynamic-uint8",
            id="unknown-variant",
        ),
        pytest.param(
            ["quantize", "in.onnx", "-o", "x.onnx", "--variant", "published"],
            "variant 'published' is made elsewhere",
            id="variant-made-elsewhere",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("parity: error:")
    assert message in err
    assert "\n" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_corrupt_model_is_refused_by_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 100)
    assert main(["compare", str(broken), "--preset", "tiny", "--inputs", str(FIXTURES)]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err


def test_stft_command_prints_both_deviations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stft"]) == 0
    out = capsys.readouterr().out
    assert "parity.builders.stft.STFT vs torch" in out
    assert "kokoro CustomSTFT vs torch" in out


def test_python_dash_m_runs_the_same_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "parity", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "export" in done.stdout
    assert "compare" in done.stdout


def test_compare_intermediate_prints_the_table_and_writes_json(
    tiny_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "intermediate.json"
    args = ["compare", str(tiny_export), "--preset", "tiny", "--inputs", str(FIXTURES)]
    code = main([*args, "--requests", "sentence", "--intermediate", "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "intermediate parity of 'sentence': PASS" in out
    assert out.index(" bert ") < out.index("decoder.generator.stft.analysis")
    document = json.loads(report.read_text())
    rows = document[0]["rows"]
    assert rows[0]["module"] == "bert"
    assert rows[-1]["module"] == "decoder.generator"
    assert all(row["within"] for row in rows)


def test_compare_intermediate_rejects_an_unknown_module(
    tiny_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", str(tiny_export), "--preset", "tiny", "--inputs", str(FIXTURES)]
    assert main([*args, "--module", "decoder.nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("parity: error: intermediate: 'decoder.nowhere' is not a module")
    assert len(err.splitlines()) == 1


def test_compare_ops_replays_a_module_op_by_op(
    tiny_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "ops.json"
    args = ["compare", str(tiny_export), "--preset", "tiny", "--inputs", str(FIXTURES)]
    module = ["--ops", "decoder.generator.noise_res.0", "--requests", "one-token"]
    code = main([*args, *module, "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "op replay of /decoder/generator/noise_res.0/" in out
    assert "every op within" in out
    rows = json.loads(report.read_text())[0]["rows"]
    assert {row["op_type"] for row in rows} >= {"Conv", "InstanceNormalization", "Sin"}


def test_compare_ops_rejects_an_unknown_module(
    tiny_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", str(tiny_export), "--preset", "tiny", "--inputs", str(FIXTURES)]
    assert main([*args, "--ops", "decoder.nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("parity: error: intermediate: 'decoder.nowhere' is not a module")
    assert len(err.splitlines()) == 1


def test_compare_list_scopes_counts_nodes_per_scope(
    tiny_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", str(tiny_export), "--list-scopes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scopes = {line.split()[1]: int(line.split()[0]) for line in lines}
    assert scopes["/decoder/"] > scopes["/decoder/generator/"] > 0
    assert "/decoder/generator/analysis/" in scopes


def test_fp16_converts_and_writes_the_report(
    tiny_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "tiny16.onnx", tmp_path / "fp16.json"
    argv = ["fp16", str(tiny_export), str(out), "--block-op", "LSTM", "--json", str(report)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "float16:" in printed
    assert "--block-op LSTM" in printed
    data = json.loads(report.read_text())
    assert data["size_after"] == out.stat().st_size
    assert data["size_after"] < FP16_LSTM_KEPT_MAX_SIZE_RATIO * data["size_before"]
    assert data["blocked_by"]["--block-scope"] > 0  # Kokoro's list, on by default
    assert not list(tmp_path.glob(".*.tmp"))


def test_fp16_webgpu_keeps_the_summing_ops_float32_and_the_weights_float16(
    tiny_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnx

    from parity.builders.fp16 import (
        WEBGPU_ACCUMULATING_OPS,
        WEBGPU_TAIL_NODES,
        WEBGPU_TAIL_SCOPES,
    )
    from parity.judge.intermediate import value_types

    out, report = tmp_path / "tiny16-webgpu.onnx", tmp_path / "fp16.json"
    assert main(["fp16", str(tiny_export), "-o", str(out), "--webgpu", "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert all(f"--block-op {op}" in printed for op in ("Conv", "MatMul", "Gemm"))
    data = json.loads(report.read_text())
    present = {node.op_type for node in onnx.load(str(tiny_export)).graph.node}
    kept = {f"--block-op {op}" for op in WEBGPU_ACCUMULATING_OPS & present}
    assert len(kept) >= 4  # Conv, ConvTranspose, MatMul, Gemm, InstanceNormalization here
    assert set(data["blocked_by"]) >= kept
    assert data["size_after"] <= FP16_MAX_SIZE_RATIO * data["size_before"]
    # The generator's tail (magnitude Exp, phase Sin, inverse STFT) computes in float32 too.
    converted = onnx.load(str(out))
    types = {name: t.tensor_type.elem_type for name, t in value_types(converted).items()}
    tail = [
        node
        for node in converted.graph.node
        if node.name in WEBGPU_TAIL_NODES or node.name.startswith(WEBGPU_TAIL_SCOPES)
    ]
    assert {node.op_type for node in tail} >= {"Exp", "Sin", "Cos", "ConvTranspose"}
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    computed = [types[name] for node in tail for name in node.output if types.get(name) in floats]
    assert set(computed) == {onnx.TensorProto.FLOAT}, computed  # float16 on the plain file


@pytest.mark.parametrize("webgpu", [False, True], ids=["plain", "webgpu"])
def test_fp16_finds_kokoros_block_list_under_kokoro_onnx_names(
    webgpu: bool, kokoro_trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The published float32 (kokoro-onnx's layout: ``/encoder/``, ``/decoder/decoder/``)
    converts with Kokoro's block list by default, as parity's export does: every listed node
    is kept float32, where parity's own names would name nothing (an error)."""
    from parity.builders.fp16 import KOKORO_ONNX_FP16, KOKORO_ONNX_FP16_WEBGPU

    out, report = tmp_path / "trained16.onnx", tmp_path / "fp16.json"
    argv = ["fp16", str(kokoro_trained[0].path), "-o", str(out), "--json", str(report)]
    assert main(argv + (["--webgpu"] if webgpu else [])) == 0
    capsys.readouterr()
    listed = KOKORO_ONNX_FP16_WEBGPU if webgpu else KOKORO_ONNX_FP16
    blocked = json.loads(report.read_text())["blocked_by"]
    assert blocked["--block-node"] == len(listed.block_nodes)
    assert blocked["--block-scope"] > 0


def test_quantize_builds_a_stored_recipe_as_the_library_does(
    tiny_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--recipe`` builds the very file the recipe's gates judge (same bytes), here on the
    tiny export with the seeded styles; the trained voices would not fit its style size. The
    stored recipe names the trained model's scopes (kokoro-onnx's wrapper), so it is first
    ported to our export's names, or its scopes would name nothing (an error). The tiny
    preset has fewer resblocks, so the GEMM scopes of the ones it lacks are dropped."""
    import json

    import onnx

    from parity.builders.quantize import quantize_model
    from parity.core.inputs import load_input_set
    from parity.core.spec import load_config
    from parity.search.optimize import load_recipe

    text = (RECIPES / "cpu.json").read_text()
    for trained, ours in TRAINED_TO_OUR_SCOPES.items():
        text = text.replace(f'"{trained}', f'"{ours}')
    document = json.loads(text)
    names = [node.name for node in onnx.load(str(tiny_export), load_external_data=False).graph.node]
    scopes = document["recipe"]["gemm_scopes"]
    document["recipe"]["gemm_scopes"] = [s for s in scopes if any(n.startswith(s) for n in names)]
    assert document["recipe"]["gemm_scopes"], "no GEMM scope of the recipe names a tiny node"
    stored = tmp_path / "cpu.json"
    stored.write_text(json.dumps(document))
    out = tmp_path / "cli.onnx"
    argv = ["quantize", str(tiny_export), "-o", str(out), "--recipe", str(stored)]
    assert main([*argv, "--voices", "seeded"]) == 0
    name, target, recipe = load_recipe(stored)
    assert f"recipe {name} (for {target}) from" in capsys.readouterr().out
    inputs = load_input_set(FIXTURES)
    calibration = inputs.sentences(load_config("full")["vocab"], inputs.calibration)
    library = quantize_model(tiny_export, tmp_path / "lib.onnx", recipe, calibration)
    assert library.integer_ops["MatMulIntegerToFloat"] > 0  # the convs as int8 GEMMs
    assert library.excluded > 0  # ALBERT's MatMuls, kept float (op_types holds MatMul only)
    assert out.read_bytes() == library.path.read_bytes()


def test_fp16_refuses_a_corrupt_model_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken, out = tmp_path / "broken.onnx", tmp_path / "out.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 100)
    assert main(["fp16", str(broken), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a readable ONNX model" in err
    assert "\n" not in err
    assert not out.exists()


def test_bench_with_no_provider_that_can_run_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnx import TensorProto, helper, save

    from parity.measure import wasm

    model = tmp_path / "m.onnx"  # a Kokoro interface that no provider gets to run
    float_, int64 = TensorProto.FLOAT, TensorProto.INT64
    graph = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["waveform"], to=float_)],
        "kokoro-shaped",
        [
            helper.make_tensor_value_info("input_ids", int64, [1, "L"]),
            helper.make_tensor_value_info("style", float_, [1, 256]),
            helper.make_tensor_value_info("speed", float_, [1]),
        ],
        [helper.make_tensor_value_info("waveform", float_, ["n"])],
    )
    save(helper.make_model(graph), str(model))
    monkeypatch.setattr(wasm, "wasm_unavailable", lambda: "node not found")
    argv = ["bench", str(model), "--providers", "wasm", "--inputs", str(FIXTURES)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "wasm: skipped (node not found)" in captured.out
    assert "bench: no provider of wasm could run here" in captured.err


def test_quantize_builds_a_registered_variant_by_name(
    tmp_path: Path, tiny_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--variant NAME`` builds the registry's recipe, byte for byte what its gates build,
    and its help names every variant the registry builds."""
    import onnx

    from parity.builders.quantize import quantize_model
    from parity.judge.variant_registry import built_variants, variant

    # The registry's recipes name the trained (kokoro-onnx) layout's scopes: the tiny export
    # under those names.
    model = onnx.load(str(tiny_export))
    for node in model.graph.node:
        for trained, ours in TRAINED_TO_OUR_SCOPES.items():
            if ours != "/" and node.name.startswith(ours):
                node.name = trained + node.name[len(ours) :]
                break
        else:
            if node.name.startswith("/duration_proj"):
                node.name = "/encoder/predictor" + node.name
    source = tmp_path / "trained-names.onnx"
    onnx.save(model, str(source))
    out = tmp_path / "cli.onnx"
    assert main(["quantize", str(source), "-o", str(out), "--variant", "dynamic-uint8"]) == 0
    assert "variant dynamic-uint8 (" in capsys.readouterr().out
    recipe = variant("dynamic-uint8").recipe
    assert recipe is not None
    library = quantize_model(source, tmp_path / "lib.onnx", recipe, [])
    assert out.read_bytes() == library.path.read_bytes()
    with pytest.raises(SystemExit):
        main(["quantize", "--help"])
    shown = "".join(capsys.readouterr().out.split())  # argparse wraps at hyphens too
    assert all(entry.name in shown for entry in built_variants())
