"""1-D convolutions rewritten as an int8 GEMM that keeps float outputs.

ONNX Runtime's integer convolutions both fall short on Kokoro's generator: ``QLinearConv``
writes its output as per-tensor uint8, which doubles the sound distance, and ``ConvInteger``
runs no faster than float (docs/recipes.md). ``com.microsoft.MatMulIntegerToFloat`` takes
uint8 activations and int8 weights with a scale per output column, runs the u8s8 GEMM, and
writes float. So each chosen ``Conv`` becomes, channels-last:

    x [1, C, T] -quantize-> uint8 -Transpose-> [1, T, C] -Pad(zero point)-> -Gather(im2col)->
    [1, T', K, C] -Reshape-> [1, T', K*C] -MatMulIntegerToFloat(int8 [K*C, O], bias)->
    [1, T', O] -Transpose-> [1, O, T']

The scale is per tensor, so quantizing before the transpose gives the same bytes, and the
transpose then moves a quarter of the memory: 0.43 of the float conv's time against 0.46
(128->128, k11, 45,600 steps, 1 thread), 0.40 against 0.49 on 2 threads for a 256-channel k3.

The activation scale is dynamic per tensor (``DynamicQuantizeLinear``, as the published int8's
``ConvInteger``) or a calibrated constant. ``form="float"`` builds the same im2col with a float
``MatMul``: the check that the layout is right, to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnx
from onnx import helper, numpy_helper

from parity.builders.int8_weights import quantize_per_channel
from parity.core.errors import ParityError
from parity.core.graph import prune_dead

__all__ = ["ConvShape", "GemmForm", "conv_shape", "rewrite_convs_as_gemm"]

GemmForm = Literal["dynamic", "static", "float"]
GEMM_FORMS: tuple[GemmForm, ...] = ("dynamic", "static", "float")
_MS = "com.microsoft"


@dataclass(frozen=True)
class ConvShape:
    """What the rewrite needs from a ``Conv``: its 1-D geometry and its weights."""

    weight: np.ndarray  # [O, C, K]
    bias: np.ndarray | None
    dilation: int
    stride: int
    pads: tuple[int, int]


def conv_shape(node: onnx.NodeProto, initializers: Mapping[str, onnx.TensorProto]) -> ConvShape:
    """The geometry of a 1-D, ungrouped ``Conv`` with constant weights, or an error naming
    what the rewrite cannot take."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.input[1] not in initializers:
        raise ParityError(f"conv gemm: {node.name} has computed weights; fold constants first")
    weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in initializers:
            raise ParityError(f"conv gemm: {node.name} has a computed bias; fold constants first")
        bias = numpy_helper.to_array(initializers[node.input[2]]).astype(np.float32)
    unsupported = [
        what
        for what, bad in (
            ("a kernel that is not 1-D", weight.ndim != 3),
            ("groups", attrs.get("group", 1) != 1),
            ("auto_pad", attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")),
        )
        if bad
    ]
    if unsupported:
        raise ParityError(f"conv gemm: {node.name} has {unsupported[0]}; only 1-D convs rewrite")
    pads = list(attrs.get("pads", [0, 0]))
    return ConvShape(
        weight,
        bias,
        dilation=int(next(iter(attrs.get("dilations", [1])))),
        stride=int(next(iter(attrs.get("strides", [1])))),
        pads=(pads[0], pads[1]),
    )


def rewrite_convs_as_gemm(
    model: onnx.ModelProto,
    scopes: Sequence[str],
    form: GemmForm = "dynamic",
    ranges: Mapping[str, tuple[float, float]] | None = None,
    *,
    keep: Sequence[str] = (),
    names: Collection[str] | None = None,
) -> list[str]:
    """Rewrite every ``Conv`` whose name starts with one of ``scopes`` and none of ``keep``
    (or, given ``names``, exactly those), in place; returns the names rewritten.
    ``form="static"`` reads each conv input's (min, max) from ``ranges``."""
    if form not in GEMM_FORMS:
        raise ParityError(f"conv gemm: unknown form {form!r}; use {', '.join(GEMM_FORMS)}")
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    chosen = [
        n
        for n in graph.node
        if n.op_type == "Conv"
        and (
            n.name in names
            if names is not None
            else n.name.startswith(tuple(scopes)) and not n.name.startswith(tuple(keep))
        )
    ]
    if form == "static":
        missing = [n.input[0] for n in chosen if n.input[0] not in (ranges or {})]
        if missing:
            raise ParityError(f"conv gemm: no calibrated range for {missing[0]}; calibrate first")
    _ensure_opsets(model)
    chosen_ids = {id(n) for n in chosen}  # `in` on a list of protos compares them deeply
    rewritten: list[str] = []
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if id(node) not in chosen_ids:
            nodes.append(node)
            continue
        shape = conv_shape(node, initializers)
        value_range = None if ranges is None else ranges.get(node.input[0])
        built, constants = _gemm_nodes(node, shape, form, value_range)
        nodes.extend(built)
        graph.initializer.extend(constants)
        rewritten.append(node.name)
    del graph.node[:]
    graph.node.extend(nodes)
    prune_dead(graph)  # the replaced convs' float weights
    return rewritten


def _gemm_nodes(
    node: onnx.NodeProto,
    shape: ConvShape,
    form: GemmForm,
    value_range: tuple[float, float] | None,
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    out_channels, in_channels, kernel = shape.weight.shape
    name = node.name

    def tensor(suffix: str) -> str:
        return f"{name}/gemm/{suffix}"

    constants: list[onnx.TensorProto] = []
    # im2col's column order is (k, c): the weights read [K, C, O] flattened to [K*C, O].
    columns = shape.weight.transpose(2, 1, 0).reshape(kernel * in_channels, out_channels)
    taps = (np.arange(kernel, dtype=np.int64) * shape.dilation).reshape(1, kernel)
    span = int(shape.dilation * (kernel - 1))
    constants += [
        numpy_helper.from_array(taps, tensor("taps")),
        numpy_helper.from_array(
            np.array([0, shape.pads[0], 0, 0, shape.pads[1], 0], np.int64), tensor("pads")
        ),
        numpy_helper.from_array(np.array(-span, np.int64), tensor("minus_span")),
        numpy_helper.from_array(np.array(0, np.int64), tensor("zero")),
        numpy_helper.from_array(np.array(shape.stride, np.int64), tensor("stride")),
        numpy_helper.from_array(np.array([1], np.int64), tensor("axis1")),
        numpy_helper.from_array(np.array([0, 0, -1], np.int64), tensor("flat")),
    ]
    nodes: list[onnx.NodeProto] = []
    source = node.input[0]
    pad_value: list[str] = []
    if form == "dynamic":
        nodes.append(
            helper.make_node(
                "DynamicQuantizeLinear",
                [source],
                [tensor("xq_cf"), tensor("xs"), tensor("xz")],
                name=tensor("quantize"),
            )
        )
        source, pad_value = tensor("xq_cf"), [tensor("xz")]
    elif form == "static":
        assert value_range is not None
        scale, zero = _uint8_scale(*value_range)
        constants += [
            numpy_helper.from_array(np.array(scale, np.float32), tensor("xs")),
            numpy_helper.from_array(np.array(zero, np.uint8), tensor("xz")),
        ]
        nodes.append(
            helper.make_node(
                "QuantizeLinear",
                [source, tensor("xs"), tensor("xz")],
                [tensor("xq_cf")],
                name=tensor("quantize"),
            )
        )
        source, pad_value = tensor("xq_cf"), [tensor("xz")]
    nodes.append(
        helper.make_node(
            "Transpose", [source], [tensor("x_cl")], name=tensor("to_cl"), perm=[0, 2, 1]
        )
    )
    source = tensor("x_cl")
    nodes += [
        helper.make_node(
            "Pad", [source, tensor("pads"), *pad_value], [tensor("padded")], name=tensor("pad")
        ),
        helper.make_node(
            "Shape", [tensor("padded")], [tensor("shape")], name=tensor("shape"), start=1, end=2
        ),
        helper.make_node("Squeeze", [tensor("shape")], [tensor("length")], name=tensor("len")),
        helper.make_node(
            "Add", [tensor("length"), tensor("minus_span")], [tensor("steps")], name=tensor("steps")
        ),
        helper.make_node(
            "Range",
            [tensor("zero"), tensor("steps"), tensor("stride")],
            [tensor("starts")],
            name=tensor("range"),
        ),
        helper.make_node(
            "Unsqueeze",
            [tensor("starts"), tensor("axis1")],
            [tensor("starts_col")],
            name=tensor("starts_col"),
        ),
        helper.make_node(
            "Add", [tensor("starts_col"), tensor("taps")], [tensor("index")], name=tensor("index")
        ),
        helper.make_node(
            "Gather",
            [tensor("padded"), tensor("index")],
            [tensor("cols")],
            name=tensor("im2col"),
            axis=1,
        ),
        helper.make_node(
            "Reshape", [tensor("cols"), tensor("flat")], [tensor("rows")], name=tensor("rows")
        ),
    ]
    bias = shape.bias if shape.bias is not None else np.zeros(out_channels, np.float32)
    constants.append(numpy_helper.from_array(bias.astype(np.float32), tensor("bias")))
    if form == "float":
        constants.append(numpy_helper.from_array(columns.astype(np.float32), tensor("w")))
        nodes += [
            helper.make_node(
                "MatMul", [tensor("rows"), tensor("w")], [tensor("mm")], name=tensor("matmul")
            ),
            helper.make_node(
                "Add", [tensor("mm"), tensor("bias")], [tensor("y_cl")], name=tensor("bias_add")
            ),
        ]
    else:
        # Symmetric int8 per output column (zero point 0), as the int8-stored weights are.
        weights, scales = quantize_per_channel(columns, axis=1)
        constants += [
            numpy_helper.from_array(weights, tensor("w")),
            numpy_helper.from_array(scales.reshape(-1), tensor("ws")),
        ]
        nodes.append(
            helper.make_node(
                "MatMulIntegerToFloat",
                [
                    tensor("rows"),
                    tensor("w"),
                    tensor("xs"),
                    tensor("ws"),
                    tensor("xz"),
                    "",
                    tensor("bias"),
                ],
                [tensor("y_cl")],
                name=tensor("matmul"),
                domain=_MS,
            )
        )
    nodes.append(
        helper.make_node(
            "Transpose", [tensor("y_cl")], [node.output[0]], name=tensor("to_cf"), perm=[0, 2, 1]
        )
    )
    return nodes, constants


def _uint8_scale(low: float, high: float) -> tuple[float, int]:
    """Asymmetric uint8 over [min(low, 0), max(high, 0)], as DynamicQuantizeLinear does."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 or 1.0
    return float(scale), int(np.clip(np.rint(-low / scale), 0, 255))


def _ensure_opsets(model: onnx.ModelProto) -> None:
    if not any(op.domain == _MS for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS, 1))
    onnx_opset = next((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), 0)
    if onnx_opset < 13:
        raise ParityError(
            f"conv gemm: the model's opset is {onnx_opset}; the rewrite needs 13 or later"
        )
