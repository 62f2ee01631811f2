"""parity.builders.forced_timing: a graph's durations become an input, and the runner speaks
on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.forced_timing import (
    FORCED_INPUT,
    PREDICTED_OUTPUT,
    duration_tensor,
    force_timing,
)
from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.judge.runners import OrtRunner

from kokoro_graphs import tiny_kokoro


def _timed_graph(path: Path) -> Path:
    """Kokoro's duration chain (Round -> Clip -> Cast int64) feeding a waveform whose length
    is the frame count: one sample per frame, counting up."""
    frames = np.array([[1.2], [2.6], [0.2], [3.9], [1.5]], np.float32)  # per token id
    nodes = [
        helper.make_node("Gather", ["frames", "input_ids"], ["g"], name="/g"),
        helper.make_node("Squeeze", ["g", "last"], ["raw"], name="/sq"),
        helper.make_node("Round", ["raw"], ["r"], name="/Round"),
        helper.make_node("Clip", ["r", "one"], ["c"], name="/Clip"),
        helper.make_node("Cast", ["c"], ["d"], name="/Cast", to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["d"], ["n"], name="/sum", keepdims=0),
        helper.make_node("Range", ["zero", "n", "step"], ["idx"], name="/range"),
        helper.make_node("Cast", ["idx"], ["w"], name="/w", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["w", "speed"], ["waveform"], name="/speed"),
    ]
    graph = helper.make_graph(
        nodes,
        "timed",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "L"]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
            helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N"])],
        [
            numpy_helper.from_array(frames, "frames"),
            numpy_helper.from_array(np.array([2], np.int64), "last"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array(1, np.int64), "step"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def _request(ids: list[int]) -> KokoroInput:
    style = np.zeros((1, 256), np.float32)
    return KokoroInput("t", "x" * len(ids), np.asarray([ids], np.int64), style)


def test_force_timing_rewires_the_duration_chain_and_reports_the_prediction(tmp_path) -> None:
    model = onnx.load(str(_timed_graph(tmp_path / "m.onnx")))
    assert duration_tensor(model.graph) == "d"
    forced = force_timing(model)
    onnx.checker.check_model(forced, full_check=True)
    assert FORCED_INPUT in [value.name for value in forced.graph.input]
    assert PREDICTED_OUTPUT in [value.name for value in forced.graph.output]
    assert [i.name for i in model.graph.input] == ["input_ids", "style", "speed"]  # a copy


@pytest.mark.parametrize("between", [TensorProto.FLOAT16, TensorProto.INT32], ids=["float", "int"])
def test_a_float_cast_after_the_round_is_still_the_chain(between, tmp_path) -> None:
    """A float16 conversion that keeps the Round float32 casts its output to float16 before
    the Clip (make webgpu's float16 file does): still the chain. A Cast to an integer type is
    not a rounding's float detour, and the search does not follow it."""
    model = onnx.load(str(_timed_graph(tmp_path / "m.onnx")))
    clip = next(node for node in model.graph.node if node.op_type == "Clip")
    clip.input[0] = "r_cast"
    at = [node.name for node in model.graph.node].index("/Clip")
    model.graph.node.insert(
        at, helper.make_node("Cast", ["r"], ["r_cast"], "/RoundCast", to=between)
    )
    assert duration_tensor(model.graph) == ("d" if between == TensorProto.FLOAT16 else None)


def test_runner_speaks_on_forced_durations_and_keeps_its_own(tmp_path) -> None:
    path = _timed_graph(tmp_path / "m.onnx")
    request = _request([0, 1, 2, 3, 0])  # rounded frames 1, 3, 1, 4, 1 (0.2 clipped to 1)
    free = OrtRunner(path).infer(request)
    assert len(free.waveform) == 10
    assert free.durations is None
    assert not free.forced
    runner = OrtRunner(path, force_timing=True)
    own = runner.infer(request)  # no durations given: it speaks on its own prediction
    assert not own.forced
    np.testing.assert_array_equal(own.durations, [1, 3, 1, 4, 1])
    np.testing.assert_array_equal(own.waveform, free.waveform)
    shifted = runner.infer(request, np.array([2, 2, 2, 2, 3]))
    assert len(shifted.waveform) == 11
    assert shifted.forced
    np.testing.assert_array_equal(shifted.durations, [1, 3, 1, 4, 1])  # what it would do
    with pytest.raises(ParityError, match="2 forced durations for 5 tokens"):
        runner.infer(request, np.array([5, 5]))


def test_a_graph_without_the_chain_is_named_in_one_line(tmp_path) -> None:
    path = tiny_kokoro(tmp_path / "m.onnx", np.ones((1, 8, 3), np.float32))
    with pytest.raises(ParityError, match="no Round -> Clip -> Cast"):
        OrtRunner(path, force_timing=True)


def test_listen_falls_back_to_free_timing_only_without_a_duration_chain(
    tmp_path, monkeypatch
) -> None:
    from parity.judge import runners
    from parity.judge.quality import model_outputs

    chainless = tiny_kokoro(tmp_path / "m.onnx", np.ones((1, 8, 3), np.float32))
    request = _request([0, 1, 2, 0])
    assert not model_outputs(chainless, [request])[0].forced  # heard free-running, judged by DTW

    def broken(path, model_bytes, **rewrites):
        raise ParityError(f"{path}: the rewired graph does not load")

    # Any other failure of the rewired graph is an error, never a quiet change of timing.
    monkeypatch.setattr(runners, "_rewritten_bytes", broken)
    with pytest.raises(ParityError, match="the rewired graph does not load"):
        model_outputs(_timed_graph(tmp_path / "timed.onnx"), [request])
