"""Float16 arithmetic on ONNX Runtime's CPU provider: a float16 file's ops computed one by one
and rounded to float16 after each, as a GPU backend computes them.

Why a rewrite: ORT's CPU provider (1.32) has no float16 kernel for Add, Sub, Mul, Div, Pow, Sin,
Sqrt, ReduceMean, LeakyRelu, Conv or MatMul. It casts a float16 chain up at its edges and runs
the whole chain in float32, even dropping the graph's own Cast to float16 ahead of it (measured,
``tests/test_fp16_arithmetic.py``: Cast -> Add -> Mul in float16 equals float32 arithmetic
rounded once). So a float16 file checked on the CPU is float16 weights with float32 arithmetic,
and says nothing of the rounding a float16 backend (WebGPU with shader-f16) adds at every op.
Here the main graph computes in float32, and every op whose output was float16 is followed by
an explicit float32 -> float16 -> float32 Cast pair, which ORT keeps. Each op still computes
inside in float32, as ORT CPU's lone kernel does: a backend that also accumulates in float16
(onnxruntime-web's float16 Conv) is further off, and op replay names that
(``parity.judge.op_replay``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["ROUNDED_SUFFIX", "float16_arithmetic"]

# A rounded value ``v`` keeps its name and float16 type; its float32 copy, which the graph's
# consumers read, is ``v`` + this suffix.
ROUNDED_SUFFIX = "/float16_arithmetic"
_HALF = TensorProto.FLOAT16
_FLOAT = TensorProto.FLOAT


def float16_arithmetic(
    model: onnx.ModelProto, types: Mapping[str, onnx.TypeProto]
) -> onnx.ModelProto:
    """A copy of ``model`` that ORT's CPU provider computes in float16 arithmetic, op by op.
    ``types`` is ``parity.judge.intermediate.value_types(model)``. Every named value keeps its
    name and type, so exposing one works as on the file. A subgraph's body (``Loop``, ``If``)
    is left to ORT, and reads the float16 values it read before; what it returns is rounded."""
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    graph = rewritten.graph

    def half(name: str) -> bool:
        known = types.get(name)
        return (
            known is not None
            and known.HasField("tensor_type")
            and known.tensor_type.elem_type == _HALF
        )

    # Values the graph is given in float16 (inputs, weights) are cast up once for the main
    # graph's ops; ORT folds the Casts of weights when the session loads.
    given = [value.name for value in [*graph.input, *graph.initializer] if half(value.name)]
    nodes = [_cast(name, name + ROUNDED_SUFFIX, _FLOAT) for name in given]
    widened = set(given)
    for node in graph.node:
        node.input[:] = [name + ROUNDED_SUFFIX if name in widened else name for name in node.input]
        nodes.append(node)
        if node.op_type == "Constant":
            outputs = [name for name in node.output if half(name)]
            nodes += [_cast(name, name + ROUNDED_SUFFIX, _FLOAT) for name in outputs]
            widened.update(outputs)
            continue
        _compute_in_float32(node)
        for index, name in enumerate(node.output):
            if name and half(name):
                node.output[index] = name + "/float32"
                nodes.append(_cast(name + "/float32", name, _HALF))
                nodes.append(_cast(name, name + ROUNDED_SUFFIX, _FLOAT))
                widened.add(name)
    del graph.node[:]
    graph.node.extend(nodes)
    return rewritten


def _cast(source: str, target: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [source], [target], to=to, name=f"{target}/cast")


def _compute_in_float32(node: onnx.NodeProto) -> None:
    """A Cast to float16 or a float16 fill computed in float32 instead (its output is rounded
    after it like any op's)."""
    for attribute in node.attribute:
        if attribute.name in ("to", "dtype") and attribute.i == _HALF:
            attribute.i = _FLOAT
        elif attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == _HALF:
            wide = numpy_helper.to_array(attribute.t).astype(np.float32)
            attribute.t.CopyFrom(numpy_helper.from_array(wide, attribute.t.name))
