"""The exporter's seven-node instance norm folds into one InstanceNormalization
(parity.builders.instance_norm) with the same output, and a near miss is left alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.instance_norm import fuse_instance_norms
from parity.judge.tolerances import INSTANCE_NORM_ATOL


def _adain(extra_reader: bool = False, axis: int = 2) -> onnx.ModelProto:
    """What torch.onnx writes for Kokoro's AdaIN: a written-out norm, then scale and shift."""
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], name="/adain/ReduceMean"),
        helper.make_node("Sub", ["x", "mean"], ["d"], name="/adain/Sub"),
        helper.make_node("Mul", ["d", "d"], ["d2"], name="/adain/Mul_2"),
        helper.make_node("ReduceMean", ["d2", "axes"], ["var"], name="/adain/ReduceMean_2"),
        helper.make_node("Add", ["var", "eps"], ["var_eps"], name="/adain/Add_2"),
        helper.make_node("Sqrt", ["var_eps"], ["std"], name="/adain/Sqrt"),
        helper.make_node("Div", ["d", "std"], ["norm"], name="/adain/Div_1"),
        helper.make_node("Mul", ["norm", "gamma"], ["scaled"], name="/adain/Mul_3"),
        helper.make_node("Add", ["scaled", "beta"], ["y"], name="/adain/Add_3"),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, "T"])]
    if extra_reader:
        nodes.append(helper.make_node("Neg", ["d"], ["d_out"], name="/adain/Neg"))
        outputs.append(helper.make_tensor_value_info("d_out", TensorProto.FLOAT, [1, 16, "T"]))
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        nodes,
        "adain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, "T"])],
        outputs,
        [
            numpy_helper.from_array(np.array([axis], np.int64), "axes"),
            numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
            numpy_helper.from_array(rng.normal(1, 0.2, (1, 16, 1)).astype(np.float32), "gamma"),
            numpy_helper.from_array(rng.normal(0, 0.2, (1, 16, 1)).astype(np.float32), "beta"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


@pytest.mark.parametrize("axis", [2, -1], ids=["axis-2", "axis-last"])
def test_the_written_out_norm_becomes_one_node_with_the_same_output(axis: int) -> None:
    model = _adain(axis=axis)
    x = np.random.default_rng(1).normal(0.5, 3, (1, 16, 300)).astype(np.float32)
    reference = _run(model, x)
    assert fuse_instance_norms(model) == 1
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("InstanceNormalization") == 1
    assert {"ReduceMean", "Sqrt", "Div", "Sub"}.isdisjoint(ops)
    np.testing.assert_allclose(_run(model, x), reference, atol=INSTANCE_NORM_ATOL, rtol=0)


def test_a_norm_whose_centred_input_is_read_elsewhere_is_left_alone() -> None:
    model = _adain(extra_reader=True)
    before = [node.op_type for node in model.graph.node]
    assert fuse_instance_norms(model) == 0
    assert [node.op_type for node in model.graph.node] == before


def test_a_mean_over_channels_is_no_instance_norm() -> None:
    model = _adain(axis=1)
    assert fuse_instance_norms(model) == 0
