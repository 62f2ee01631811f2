"""Weights of ops kept float32 for their arithmetic, stored float16 behind a Cast (``--webgpu``):
half the bytes, float32 arithmetic, and nothing the block list keeps for its values touched."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from parity.builders.fp16 import Fp16Options, convert_float
from parity.judge.tolerances import FP16_MAX_SIZE_RATIO

FLOAT_CONV = Fp16Options(block_ops=frozenset({"Conv"}))
STORED_LOW = Fp16Options(block_ops=frozenset({"Conv"}), low_storage_ops=frozenset({"Conv"}))


def two_convs() -> tuple[onnx.ModelProto, np.ndarray]:
    """Conv -> Relu -> Conv, the second under a scope a block list may name."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array((rng.standard_normal((16, 16, 5)) * 0.2).astype(np.float32), name)
        for name in ("W1", "W2")
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W1"], ["c"], name="/first/Conv", pads=[2, 2]),
            helper.make_node("Relu", ["c"], ["r"], name="/Relu"),
            helper.make_node("Conv", ["r", "W2"], ["y"], name="/kept/Conv", pads=[2, 2]),
        ],
        "two_convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, "T"])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, rng.standard_normal((1, 16, 300)).astype(np.float32)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


def weight_types(model: onnx.ModelProto) -> dict[str, int]:
    return {tensor.name: tensor.data_type for tensor in model.graph.initializer}


def test_weights_of_float32_ops_are_stored_float16_and_cast_up() -> None:
    model, x = two_convs()
    kept, kept_report = convert_float(model, FLOAT_CONV)
    stored, report = convert_float(model, STORED_LOW)
    assert set(weight_types(kept).values()) == {TensorProto.FLOAT}
    assert set(weight_types(stored).values()) == {TensorProto.FLOAT16}
    assert report.size_after <= FP16_MAX_SIZE_RATIO * kept_report.size_after
    assert report.casts_inserted == kept_report.casts_inserted + 2
    # The arithmetic is float32 on the weights float16 rounds: bit for bit what the float32
    # Conv computes with float16-rounded weights.
    rounded = onnx.ModelProto()
    rounded.CopyFrom(model)
    for tensor in rounded.graph.initializer:
        array = numpy_helper.to_array(tensor).astype(np.float16).astype(np.float32)
        tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    np.testing.assert_array_equal(run(stored, x), run(rounded, x))


def test_a_block_list_scope_keeps_its_weights_float32() -> None:
    model, _ = two_convs()
    options = Fp16Options(
        block_ops=frozenset({"Conv"}),
        low_storage_ops=frozenset({"Conv"}),
        block_scopes=("/kept/",),
    )
    stored, _ = convert_float(model, options)
    types = weight_types(stored)
    assert types["W2"] == TensorProto.FLOAT
    assert [t for name, t in types.items() if name.startswith("W1")] == [TensorProto.FLOAT16]
