"""Files made elsewhere, each judged by the verdict of its precision: float32 and float16 by
the staged check with their own bounds, a quantized file by the four axes against PyTorch;
through ``parity compare`` and through ``--parity-onnx NAME=PATH`` in pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.cli import main
from parity.core.spec import KokoroSpec
from parity.judge.detect import read_graph
from parity.judge.tolerances import FP16
from parity.judge.verdict import choose_verdict

pytestmark = pytest.mark.harness(
    "judge/verdict.py",
    "judge/detect.py",
    "judge/subjects.py",
    "judge/quality.py",
    "pytest_plugin/subject_fixtures.py",
    "cli/fp32.py",
    "gates",
)


@pytest.fixture(scope="module")
def tiny_files(parity_cache) -> dict[str, Path]:
    """The tiny model exported and converted to float16 by the harness, as files to hand in."""
    from parity.builders.export import export_cached
    from parity.builders.fp16 import KOKORO_FP16, convert_cached
    from parity.builders.model import build_model

    spec = KokoroSpec(preset="tiny")
    exported = export_cached(parity_cache, spec, build_model(spec))
    assert exported.ok, exported.summary()
    assert exported.path is not None
    return {
        "fp32": exported.path,
        "fp16": convert_cached(parity_cache, exported.path, KOKORO_FP16).path,
    }


def test_the_verdict_follows_the_file_and_a_flag_overrides_it(tiny_files) -> None:
    facts = read_graph(tiny_files["fp16"])
    assert choose_verdict(facts).precision == "fp16"
    overridden = choose_verdict(facts, "fp32")
    assert overridden.precision == "fp32"
    assert "--precision fp32 overrides the detected fp16" in overridden.reason


def test_compare_judges_a_float16_file_by_the_float16_bounds(tiny_files, capsys) -> None:
    code = main(["compare", str(tiny_files["fp16"]), "--preset", "tiny", "--requests", "sentence"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "precision fp16 (" in out
    assert "verdict: staged parity against PyTorch float32, float16 bounds (FP16;" in out
    assert f"generator inputs rms_rel <= {FP16.stage_rms_rel:g}," in out  # printed with the result


def test_compare_judges_a_quantized_file_by_the_four_axes(
    kokoro_trained, trained_checkpoint, parity_config, capsys
) -> None:
    """The published int8 against the float32 file it came from: it meets the bounds it set.
    Its gain is measured and printed before any sound figure."""
    published = kokoro_trained[0]
    argv = ["compare", str(published.int8_path), "--checkpoint", str(trained_checkpoint)]
    cache = ["--cache-dir", str(parity_config.cache_root)]
    code = main([*argv, "--reference", str(published.path), *cache])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "precision quantized (integer ops: " in out
    assert "verdict: four axes (timing, sound, static, loudness)" in out
    assert out.index("output gain") < out.index("aligned log-mel")
    assert "timing forced" in out


def test_against_pytorch_the_published_int8_reads_its_graphs_static(
    kokoro_trained, trained_checkpoint, parity_config, capsys
) -> None:
    """Without a float32 file, the reference is PyTorch: the verdict is reached, the published
    graph's 1.5x level is measured first and taken out, and the >6 kHz share the published
    float32 graph already adds (its source sums phase in float32) shows on the static axis."""
    argv = ["compare", str(kokoro_trained[0].int8_path), "--checkpoint", str(trained_checkpoint)]
    code = main([*argv, "--cache-dir", str(parity_config.cache_root)])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    gain_line = next(line for line in out.splitlines() if "output gain" in line)
    assert "(+3.1" in gain_line or "(+3.5" in gain_line, gain_line
    assert "reference: PyTorch float32" in out
    assert f"quantized verdict of '{kokoro_trained[0].int8_path.name}': " in out


def _gates(pytester: pytest.Pytester, parity_config, select: str, *args: str) -> pytest.RunResult:
    """The package's gates selected by ``select``, in a pytester run sharing this run's cache."""
    return pytester.runpytest(
        "-k",
        select,
        "-rA",
        "--parity-gates",
        f"--parity-cache-dir={parity_config.cache_root}",
        *args,
    )


def _gate_outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Test id -> outcome, from a -rA run."""
    outcomes = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "SKIPPED", "ERROR"):
            if line.startswith(word + " "):
                outcomes[line.split(" ", 2)[1]] = word
    return outcomes


def test_prebuilt_files_go_through_the_gates_of_their_precision(
    pytester: pytest.Pytester, tiny_files, parity_config
) -> None:
    result = _gates(
        pytester,
        parity_config,
        "parity and not context and not one-token",
        "--parity-preset=tiny",
        f"--parity-onnx=whole={tiny_files['fp32']}",
        f"--parity-onnx=half={tiny_files['fp16']}",
    )
    outcomes = _gate_outcomes(result)
    ids = {test: set(test.split("[", 1)[1].rstrip("]").split("-")) for test in outcomes}
    staged = {frozenset(ids[t]): t for t in outcomes if "onnxruntime_matches_pytorch" in t}
    held_out = {frozenset(ids[t]): t for t in outcomes if "shortest_held_out" in t}
    walk = [t for t in outcomes if "test_intermediate_parity" in t]
    assert set(staged) == {frozenset({"whole", "sentence"}), frozenset({"half", "sentence"})}
    assert set(held_out) == {frozenset({"whole"}), frozenset({"half"})}
    judged = [*staged.values(), *held_out.values()]
    assert all(outcomes[t] == "PASSED" for t in judged), result.stdout.str()[-3000:]
    assert walk, outcomes
    assert all("whole" in ids[t] for t in walk)
    # The size check needs the float32 file the float16 one came from; a prebuilt has none.
    result.stdout.fnmatch_lines(["SKIPPED *test_fp16_parity.py*: half is prebuilt: no float32*"])
    assert not any({"fp32", "fp16"} & names for names in ids.values()), "the own export ran"


def test_a_prebuilt_quantized_file_gets_the_quantized_gate(
    pytester: pytest.Pytester, kokoro_trained, parity_config
) -> None:
    result = _gates(
        pytester,
        parity_config,
        "quantized",
        "--parity-weights=recovered",
        f"--parity-onnx=published={kokoro_trained[0].int8_path}",
        f"--parity-onnx=float={kokoro_trained[0].path}",
    )
    outcomes = _gate_outcomes(result)
    gate = next(t for t in outcomes if "test_quantized_parity" in t)
    assert gate.endswith("[published]")
    assert outcomes[gate] == "PASSED", result.stdout.str()[-3000:]


def test_a_bad_prebuilt_file_stops_the_run_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".onnx", broken="not onnx at all")
    result = pytester.runpytest("--parity-onnx=mine=broken.onnx")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*parity: broken.onnx: not a readable ONNX model*"])
