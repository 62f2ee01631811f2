"""Weight-only int8 storage (parity.builders.int8_weights): a quarter of the bytes for the float
layers' weights, float arithmetic, and nothing left of it once ONNX Runtime has loaded the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.int8_weights import store_float_weights_as_int8
from parity.judge.tolerances import INT8_STORAGE_MAX_SIZE_RATIO, INT8_STORAGE_RMS_REL

HIDDEN = 32


def _graph() -> onnx.ModelProto:
    """Every op the pass rewrites, one layer in a kept scope, one tiny weight."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("MatMul", ["x", "w_matmul"], ["a"], name="/enc/MatMul"),
        helper.make_node("Gemm", ["a", "w_gemm"], ["b"], name="/enc/fc/Gemm", transB=1),
        helper.make_node("Unsqueeze", ["b", "axes"], ["b3"], name="/enc/Unsqueeze"),
        helper.make_node("Transpose", ["b3"], ["seq"], name="/enc/Transpose", perm=[2, 0, 1]),
        helper.make_node(
            "LSTM", ["seq", "w_lstm", "r_lstm"], ["y"], name="/enc/lstm/LSTM", hidden_size=HIDDEN
        ),
        helper.make_node("Reshape", ["y", "to_conv"], ["c"], name="/dec/Reshape"),
        helper.make_node("Conv", ["c", "w_conv"], ["d"], name="/dec/conv/Conv", pads=[1, 1]),
        helper.make_node("ConvTranspose", ["d", "w_up"], ["e"], name="/dec/up/ConvTranspose"),
        helper.make_node("Conv", ["e", "w_kept"], ["f"], name="/dec/kept/Conv", pads=[1, 1]),
        helper.make_node("Conv", ["f", "w_tiny"], ["out"], name="/dec/tiny/Conv", pads=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "storage",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 4])],
        [
            weight("w_matmul", 64, 64),
            weight("w_gemm", 48, 64),
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
            weight("w_lstm", 1, 4 * HIDDEN, 48),
            weight("r_lstm", 1, 4 * HIDDEN, HIDDEN),
            numpy_helper.from_array(np.array([1, HIDDEN, 1], np.int64), "to_conv"),
            weight("w_conv", 48, HIDDEN, 3),
            weight("w_up", 48, 32, 4),
            weight("w_kept", 32, 32, 3),
            weight("w_tiny", 1, 32, 3),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray, optimized: Path | None = None) -> np.ndarray:
    options = ort.SessionOptions()
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def stored() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    original = _graph()
    rewritten = _graph()
    store_float_weights_as_int8(rewritten, keep_scopes=("/dec/kept/",))
    return original, rewritten


def test_every_weight_op_is_stored_as_int8_except_kept_scopes_and_tiny_weights(stored) -> None:
    _, rewritten = stored
    types = {t.name: t.data_type for t in rewritten.graph.initializer}
    for name in ("w_matmul", "w_gemm", "w_lstm", "r_lstm", "w_conv", "w_up"):
        assert types.get(f"{name}_int8") == TensorProto.INT8, name
        assert name not in types, name
    assert types["w_kept"] == TensorProto.FLOAT
    assert types["w_tiny"] == TensorProto.FLOAT  # 96 values: not worth two nodes
    onnx.checker.check_model(rewritten, full_check=True)


def test_the_pass_reports_a_quarter_of_the_bytes() -> None:
    report = store_float_weights_as_int8(_graph(), keep_scopes=("/dec/kept/",))
    assert report.weights == 6
    assert report.bytes_after < INT8_STORAGE_MAX_SIZE_RATIO * report.bytes_before


def test_the_model_computes_in_float_with_the_rounded_weights(stored) -> None:
    """Same outputs as the float model given int8-rounded weights: storage, not arithmetic."""
    original, rewritten = stored
    stored_values = {t.name: numpy_helper.to_array(t) for t in rewritten.graph.initializer}
    rounded = _graph()
    for tensor in rounded.graph.initializer:
        if f"{tensor.name}_int8" in stored_values:
            value = stored_values[f"{tensor.name}_int8"] * stored_values[f"{tensor.name}_scale"]
            tensor.CopyFrom(numpy_helper.from_array(value.astype(np.float32), tensor.name))
    x = np.random.default_rng(1).normal(0, 1, (1, 64)).astype(np.float32)
    ours, expected, reference = _run(rewritten, x), _run(rounded, x), _run(original, x)
    # Bit for bit: ONNX Runtime folds Cast and Mul into the very float32 weights numpy makes.
    np.testing.assert_array_equal(ours, expected)
    moved = np.sqrt(np.mean((ours - reference) ** 2) / np.mean(reference**2))
    assert 0 < moved < INT8_STORAGE_RMS_REL


def test_onnx_runtime_folds_the_storage_away_at_load(stored, tmp_path) -> None:
    """The reason for Cast and Mul over DequantizeLinear: the optimised graph ORT runs has float
    weights again and none of the storage nodes, so the arithmetic costs what float's does."""
    _, rewritten = stored
    optimized = tmp_path / "optimized.onnx"
    _run(rewritten, np.zeros((1, 64), np.float32), optimized)
    graph = onnx.load(str(optimized)).graph
    assert not [n.name for n in graph.node if n.name.endswith(("_Cast", "_Scale"))]
    assert not [t.name for t in graph.initializer if t.data_type == TensorProto.INT8]
