"""parity.sensitivity on a small graph with one layer planted to break under each transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.errors import ParityError
from parity.inputs import load_input_set
from parity.model import load_config
from parity.sensitivity import _bisect, scope_of, sweep

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inputs"


def _relative_rms(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float(np.linalg.norm(candidate - reference) / np.linalg.norm(reference))


def _silent_first_channel(rng: np.random.Generator) -> np.ndarray:
    """The first Conv's kernel, with output channel 0 all zero: /dec/b/ reads zeros there."""
    kernel = rng.normal(0, 0.3, (8, 16, 3)).astype(np.float32)
    kernel[0] = 0
    return kernel


def _model(path: Path, fragile: np.ndarray) -> Path:
    """Kokoro's interface; four weight layers in three scopes, /dec/b/ holding ``fragile``."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["e"], name="/text/Gather"),
        helper.make_node("MatMul", ["e", "w1"], ["h"], name="/enc/proj/MatMul"),
        helper.make_node("MatMul", ["style", "w2"], ["s"], name="/enc/style/MatMul"),
        helper.make_node("Add", ["h", "s"], ["hs"], name="/enc/Add"),
        helper.make_node("Transpose", ["hs"], ["t"], name="/Transpose", perm=[0, 2, 1]),
        helper.make_node("Conv", ["t", "k1"], ["c"], name="/dec/a/Conv", pads=[1, 1]),
        helper.make_node("Conv", ["c", "k2"], ["c2"], name="/dec/b/Conv", pads=[1, 1]),
        helper.make_node("Mul", ["c2", "speed"], ["m"], name="/Mul"),
        helper.make_node("Reshape", ["m", "flat"], ["samples"], name="/Reshape"),
        # 64 copies: long enough for log-mel frames (n_fft 1024) on the CLI's default loss
        helper.make_node("Tile", ["samples", "copies"], ["waveform"], name="/Tile"),
    ]
    graph = helper.make_graph(
        nodes,
        "sweep",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "L"]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
            helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N"])],
        [
            weight("embedding", 178, 16),
            weight("w1", 16, 16),
            weight("w2", 256, 16),
            numpy_helper.from_array(_silent_first_channel(rng), "k1"),
            numpy_helper.from_array(fragile, "k2"),
            numpy_helper.from_array(np.array([-1], np.int64), "flat"),
            numpy_helper.from_array(np.array([64], np.int64), "copies"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def requests() -> list:
    inputs = load_input_set(FIXTURES)
    return inputs.sentences(load_config("full")["vocab"], inputs.calibration)[:3]


def _outlier_kernel() -> np.ndarray:
    """Small weights plus a huge one on the silent channel: it changes nothing in float, but a
    per-tensor 8-bit step sized for it rounds every other weight to zero."""
    kernel = np.random.default_rng(1).normal(0, 0.3, (1, 8, 3)).astype(np.float32)
    kernel[0, 0, 0] = 200.0
    return kernel


def _huge_kernel() -> np.ndarray:
    """Weights near 1e5: beyond float16's 65504, and so are the sums they make."""
    return np.random.default_rng(1).normal(0, 1e5, (1, 8, 3)).astype(np.float32)


@pytest.mark.parametrize(
    ("transform", "fragile"),
    [("int8-dynamic", _outlier_kernel), ("fp16", _huge_kernel)],
    ids=["int8-outlier", "fp16-overflow"],
)
def test_sweep_names_the_planted_layer_first_and_keeps_it(
    tmp_path, requests, transform, fragile
) -> None:
    source = _model(tmp_path / "m.onnx", fragile())
    result = sweep(
        source, transform, requests, threshold=0.05, budget=0.05, loss=_relative_rms, depth=1
    )
    # /dec/ hurt, so it was split: its Conv b is named first and kept out, a is transformed.
    assert result.rows[0].scope == "/dec/b/"
    assert not result.rows[0].loss <= 0.05
    assert result.excluded == ("/dec/b/",)
    assert {row.scope for row in result.rows} == {"/dec/a/", "/dec/b/", "/enc/"}
    assert result, result.summary()
    result.write(tmp_path / "out")
    table = (tmp_path / "out" / "sensitivity.csv").read_text().splitlines()
    assert table[0] == "scope,op_types,nodes,loss,excluded"
    assert table[1].startswith("/dec/b/,Conv,1,")


def test_bisection_finds_the_fewest_extra_exclusions() -> None:
    calls: list[int] = []

    def combined(extra: int) -> float:
        calls.append(extra)
        return 1.0 - 0.1 * extra

    assert _bisect(combined, 10, budget=0.55) == (5, pytest.approx(0.5))
    assert len(calls) <= 5  # log2(10) probes plus the first, not ten
    assert _bisect(lambda extra: 0.1, 10, budget=0.55) == (0, 0.1)


def test_scope_of_cuts_node_names_at_module_depth() -> None:
    name = "/decoder/decoder/generator/resblocks.2/convs1.0/Conv"
    assert scope_of(name, 2) == "/decoder/decoder/"
    assert scope_of(name, 4) == "/decoder/decoder/generator/resblocks.2/"
    assert scope_of(name, 9) == "/decoder/decoder/generator/resblocks.2/convs1.0/"


def test_sweep_refuses_unknown_transforms_and_empty_inputs(tmp_path, requests) -> None:
    source = _model(tmp_path / "m.onnx", _outlier_kernel())
    with pytest.raises(ParityError, match="unknown transform"):
        sweep(source, "int4", requests, threshold=0.1, budget=0.1)  # type: ignore[arg-type]
    with pytest.raises(ParityError, match="no requests"):
        sweep(source, "fp16", [], threshold=0.1, budget=0.1)


def test_cli_sensitivity_writes_the_table_and_names_the_layer(tmp_path, capsys) -> None:
    import json

    from parity.cli import main

    source = _model(tmp_path / "m.onnx", _outlier_kernel())
    out = tmp_path / "sweep"
    argv = ["sensitivity", str(source), "--transform", "int8-dynamic", "--out", str(out)]
    assert main([*argv, "--depth", "1", "--sentence", "statement", "--inputs", str(FIXTURES)]) == 0
    printed = capsys.readouterr().out
    assert "pre-processing: done" in printed
    result = json.loads((out / "sensitivity.json").read_text())
    assert result["rows"][0]["scope"] == "/dec/b/"
    assert result["excluded"] == ["/dec/b/"]
    assert result["passed"] is True
    assert sorted(p.name for p in out.iterdir()) == ["sensitivity.csv", "sensitivity.json"]
