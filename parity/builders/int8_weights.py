"""Weight-only int8 storage for the layers a recipe leaves in float: the file gets smaller, the
arithmetic stays float.

Each float weight of a Conv, ConvTranspose, Gemm, MatMul or LSTM is stored as int8 with one
symmetric scale per output channel, and rebuilt in the graph as ``Cast(int8 -> float) * scale``.
Why not ``DequantizeLinear``, the standard form: ONNX Runtime keeps DequantizeLinear nodes
unfolded so its QDQ fusions can see them, so a weight behind one is dequantized on every run:
on the chosen CPU recipe's float layers that took 0.96 of float32's time against 0.81 with Cast
and Mul (same weights, ORT 1.32, 2 threads, 3 selection requests x 3, one run, 2026-12-03).
Cast and Mul on constants are folded at session load by ORT's constant folding, so the model
runs at float's speed with the weights in memory as float; only the file is 4x smaller for them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["Int8Weights", "quantize_per_channel", "store_float_weights_as_int8"]

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "LSTM")
# Smaller weights (biases, norms, the harmonic source's 9x1 linear) save nothing worth a node.
MIN_ELEMENTS = 1024


@dataclass(frozen=True)
class Int8Weights:
    """What the storage pass did: weights rewritten, and the bytes they took before and after."""

    weights: int
    bytes_before: int
    bytes_after: int


def _channel_axis(node: onnx.NodeProto, position: int) -> int | None:
    """The output-channel axis of ``node``'s weight input at ``position``, or None when that
    input is not a weight this pass rewrites."""
    if node.op_type == "Conv" and position == 1:
        return 0  # [out, in/groups, k]
    if node.op_type == "ConvTranspose" and position == 1:
        return 1  # [in, out/groups, k]
    if node.op_type == "Gemm" and position == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "MatMul" and position == 1:
        return 1  # [K, N]
    if node.op_type == "LSTM" and position in (1, 2):
        return 1  # W, R: [directions, 4 * hidden, in]: a scale per gate row
    return None


def quantize_per_channel(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per channel along ``axis``: (values, scales shaped to broadcast)."""
    others = tuple(i for i in range(weight.ndim) if i != axis)
    peak = np.abs(weight).max(axis=others, keepdims=True)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    values = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    return values, scale


def store_float_weights_as_int8(
    model: onnx.ModelProto, keep_scopes: Sequence[str] = ()
) -> Int8Weights:
    """Rewrite ``model`` in place: every float weight of the ops above that is read only as a
    weight (by nodes outside ``keep_scopes``, at the same channel axis) becomes int8."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    readers: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in graph.node:
        for position, name in enumerate(node.input):
            if name in initializers:
                readers[name].append((node, position))
    storage: list[onnx.NodeProto] = []
    count = before = after = 0
    for name, uses in readers.items():
        tensor = initializers[name]
        if tensor.data_type != TensorProto.FLOAT:
            continue
        axes = {
            _channel_axis(node, position)
            if node.op_type in WEIGHT_OPS and not node.name.startswith(tuple(keep_scopes))
            else None
            for node, position in uses
        }
        weight = numpy_helper.to_array(tensor)
        if len(axes) != 1 or None in axes or weight.size < MIN_ELEMENTS:
            continue
        axis = int(axes.pop())  # type: ignore[arg-type]
        if axis >= weight.ndim:
            continue
        values, scale = quantize_per_channel(weight, axis)
        graph.initializer.remove(tensor)
        graph.initializer.extend(
            [
                numpy_helper.from_array(values, f"{name}_int8"),
                numpy_helper.from_array(scale, f"{name}_scale"),
            ]
        )
        storage += [
            helper.make_node(
                "Cast",
                [f"{name}_int8"],
                [f"{name}_cast"],
                name=f"{name}_Cast",
                to=TensorProto.FLOAT,
            ),
            helper.make_node(
                "Mul", [f"{name}_cast", f"{name}_scale"], [name], name=f"{name}_Scale"
            ),
        ]
        count += 1
        before += weight.nbytes
        after += values.nbytes + scale.nbytes
    # The storage nodes read only initializers, so putting them first keeps the order valid.
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*storage, *nodes])
    return Int8Weights(count, before, after)
