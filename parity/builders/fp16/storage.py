"""Weights of ops kept float32 for their arithmetic, stored in the low type anyway and cast up
in the graph: the file stays half size while those ops compute in float32.

``--webgpu`` keeps WebGPU's float16-summing ops (convolutions, matrix products) float32. Their
weights are most of Kokoro's bytes, so kept float32 they would make a float16 file 0.93x of
float32 (the trained model); stored float16 they lose only float16's rounding of the weights,
which a float16 file has anyway. A Cast of a constant is folded by ONNX Runtime when the session
loads, so nothing is cast per run.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper

from parity.builders.fp16.constants import LowConstants
from parity.builders.fp16.settings import SUFFIX, Fp16Options
from parity.core.graph import UniqueNames

__all__ = ["store_weights_low"]


def store_weights_low(
    model: onnx.ModelProto, options: Fp16Options, constants: LowConstants, names: UniqueNames
) -> int:
    """Store each float32 initializer of the main graph read only by nodes of
    ``options.low_storage_ops`` (and none of the block list's scopes or nodes, which are kept
    float32 for their values) in the low type, behind one Cast to float32; the Casts made."""
    graph = model.graph
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    interface = {value.name for value in [*graph.input, *graph.output]}
    casts: list[onnx.NodeProto] = []
    for initializer in graph.initializer:
        found = readers.get(initializer.name, [])
        if (
            initializer.data_type != TensorProto.FLOAT
            or initializer.name in interface
            or not found
            or not all(_stored_low(node, options) for node in found)
        ):
            continue
        low_name = names(f"{initializer.name}_{SUFFIX[options.low]}")
        array = constants.to_low(numpy_helper.to_array(initializer))
        float_name = initializer.name
        initializer.CopyFrom(numpy_helper.from_array(array, low_name))
        constants.converted += 1
        casts.append(
            helper.make_node(
                "Cast", [low_name], [float_name], name=names(f"Cast_{float_name}_fp32"),
                to=TensorProto.FLOAT,
            )
        )  # fmt: skip
    for offset, cast in enumerate(casts):  # first, so every reader comes after its Cast
        graph.node.insert(offset, cast)
    return len(casts)


def _stored_low(node: onnx.NodeProto, options: Fp16Options) -> bool:
    return (
        node.op_type in options.low_storage_ops
        and node.name not in options.block_nodes
        and not node.name.startswith(options.block_scopes)
    )
