"""Small hand-built ONNX graphs with the shapes that break float16 converters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
OPSET = 20


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        outputs,
        [numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model


def _x(name: str = "x", shape: tuple[int, ...] = (2, 4)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, F, list(shape))


def _weight(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.5, shape).astype(np.float32)


def _branch(name: str, op: str, constant: str, out: str) -> onnx.GraphProto:
    """A branch body that reads the outer float tensor ``a``."""
    return helper.make_graph(
        [helper.make_node(op, ["a", constant], [out], name=f"{name}_{op}")],
        name,
        [],
        [helper.make_tensor_value_info(out, F, None)],
    )


def if_reads_outer() -> onnx.ModelProto:
    """If whose branches read an outer float tensor; the then-branch nests a second If."""
    inner = helper.make_node(
        "If",
        ["flag"],
        ["t_out"],
        name="inner_if",
        then_branch=_branch("inner_then", "Add", "c1", "inner_then_out"),
        else_branch=_branch("inner_else", "Mul", "c2", "inner_else_out"),
    )
    then_graph = helper.make_graph(
        [inner], "then", [], [helper.make_tensor_value_info("t_out", F, None)]
    )
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="matmul"),
        helper.make_node("ReduceSum", ["x"], ["total"], name="sum", keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["flag"], name="greater"),
        helper.make_node(
            "If",
            ["flag"],
            ["y"],
            name="outer_if",
            then_branch=then_graph,
            else_branch=_branch("else", "Sub", "c2", "e_out"),
        ),
    ]
    return _model(
        nodes,
        [_x()],
        [_x("y")],
        {
            "w": _weight((4, 4), 1),
            "c1": _weight((4,), 2),
            "c2": _weight((4,), 3),
            "zero": np.zeros((), np.float32),
        },
    )


def loop_reads_outer() -> onnx.ModelProto:
    """Loop carrying a float state that adds an outer float tensor on every iteration."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond"),
            helper.make_node("Add", ["state_in", "a"], ["summed"], name="body_add"),
            helper.make_node("Tanh", ["summed"], ["state_out"], name="body_tanh"),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", F, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", F, None),
        ],
    )
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="matmul"),
        helper.make_node("Loop", ["trips", "", "x"], ["y"], name="loop", body=body),
    ]
    return _model(
        nodes, [_x()], [_x("y")], {"w": _weight((4, 4), 4), "trips": np.array(3, np.int64)}
    )


def adjacent_blocked() -> onnx.ModelProto:
    """MatMul -> Softmax -> Exp -> Mul, with Softmax and Exp to be blocked."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="matmul"),
        helper.make_node("Softmax", ["a"], ["b"], name="softmax"),
        helper.make_node("Exp", ["b"], ["c"], name="exp"),
        helper.make_node("Mul", ["c", "k"], ["y"], name="scale"),
    ]
    return _model(nodes, [_x()], [_x("y")], {"w": _weight((4, 4), 5), "k": _weight((4,), 6)})


def blocked_output() -> onnx.ModelProto:
    """A blocked op (Sqrt) produces the graph output."""
    nodes = [
        helper.make_node("Mul", ["x", "x"], ["a"], name="square"),
        helper.make_node("Sqrt", ["a"], ["y"], name="sqrt"),
    ]
    return _model(nodes, [_x()], [_x("y")])


def shared_initializer() -> onnx.ModelProto:
    """One float initializer read by a MatMul (converted) and an Add (to be blocked)."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="matmul"),
        helper.make_node("Add", ["a", "w"], ["y"], name="add"),
    ]
    return _model(nodes, [_x(shape=(4, 4))], [_x("y", (4, 4))], {"w": _weight((4, 4), 7)})


def shape_arithmetic() -> onnx.ModelProto:
    """int64 shape arithmetic beside float compute: Shape, Gather, Mul, Concat, Reshape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["rows"], name="rows", axis=0),
        helper.make_node("Mul", ["rows", "two"], ["rows2"], name="rows_times_two"),
        helper.make_node("Concat", ["rows2", "minus_one"], ["new_shape"], name="concat", axis=0),
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "new_shape"], ["y"], name="reshape"),
    ]
    return _model(
        nodes,
        [_x()],
        [helper.make_tensor_value_info("y", F, [4, 2])],
        {
            "zero": np.array([0], np.int64),
            "two": np.array([2], np.int64),
            "minus_one": np.array([-1], np.int64),
        },
    )


def out_of_range() -> onnx.ModelProto:
    """Weights beyond float16's range (a -3.4e38 mask value) and below its subnormals."""
    weight = np.array([[1e6, -3.4e38, 1e-9, 0.5]], np.float32)
    nodes = [
        helper.make_node("Add", ["x", "w"], ["masked"], name="add"),
        helper.make_node("Softmax", ["masked"], ["y"], name="softmax"),
    ]
    return _model(nodes, [_x()], [_x("y")], {"w": weight})


def resize_scales() -> onnx.ModelProto:
    """Resize reads float ``scales`` that must stay float32 whatever the data's type."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Resize", ["r", "", "scales"], ["y"], name="resize", mode="nearest"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", F, [1, 1, 2, 4])],
        [helper.make_tensor_value_info("y", F, [1, 1, 4, 8])],
        {"scales": np.array([1, 1, 2, 2], np.float32)},
    )


GRAPHS: dict[str, Callable[[], onnx.ModelProto]] = {
    "if-reads-outer-nested": if_reads_outer,
    "loop-reads-outer": loop_reads_outer,
    "adjacent-blocked": adjacent_blocked,
    "blocked-output": blocked_output,
    "shared-initializer": shared_initializer,
    "shape-arithmetic": shape_arithmetic,
    "out-of-range": out_of_range,
    "resize-scales": resize_scales,
}
# What each graph blocks, by node name, to show the case it is named after.
BLOCKS: dict[str, frozenset[str]] = {
    "adjacent-blocked": frozenset({"softmax", "exp"}),
    "blocked-output": frozenset({"sqrt"}),
    "shared-initializer": frozenset({"add"}),
    "out-of-range": frozenset({"softmax"}),
}


def onnxruntime_converter(
    model: onnx.ModelProto, blocked: frozenset[str] = frozenset()
) -> onnx.ModelProto:
    """ONNX Runtime's ``transformers.float16`` converter, as people call it."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True, node_block_list=sorted(blocked))


def onnxconverter_common(
    model: onnx.ModelProto, blocked: frozenset[str] = frozenset()
) -> onnx.ModelProto:
    """onnxconverter-common's converter, as people call it."""
    from onnxconverter_common.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True, node_block_list=sorted(blocked))


def quietly(convert: Callable[..., onnx.ModelProto], *args: object) -> onnx.ModelProto:
    """Run another converter without its warnings (clamped weights, ir_version) and logs."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return convert(*args)
        finally:
            logging.disable(logging.NOTSET)


def feed_for(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for value in model.graph.input:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        feed[value.name] = rng.normal(0, 1, shape).astype(np.float32)
    return feed


def tiny_float16_file(cache: Any) -> tuple[Any, Path]:
    """The tiny preset's PyTorch model and the harness's float16 file of its export
    (``KOKORO_FP16``), both built once in ``cache``."""
    from parity.builders.export import export_cached
    from parity.builders.fp16 import KOKORO_FP16, convert_cached
    from parity.builders.model import build_model
    from parity.core.spec import KokoroSpec

    spec = KokoroSpec(preset="tiny")
    model = build_model(spec)
    exported = export_cached(cache, spec, model)  # type: ignore[arg-type]
    assert exported.ok, exported.error_line
    assert exported.path is not None
    return model, convert_cached(cache, exported.path, KOKORO_FP16).path
