"""Float32 weights, Constant nodes and dtype attributes rewritten in the low type, with the
values it cannot hold clamped or flushed to zero, and counted for the report."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from parity.builders.fp16.precision import PrecisionPlan, Scope, Source
from parity.builders.fp16.schema import DTYPE_ATTRIBUTE, all_nodes, set_int_attribute
from parity.builders.fp16.settings import SUFFIX
from parity.core.errors import ParityError
from parity.core.graph import UniqueNames, node_subgraphs

__all__ = ["LowConstants", "prune_unread_constants"]


class LowConstants:
    """Converts constant float32 data to one low type; counts what it converted and lost."""

    def __init__(self, low: int, names: UniqueNames) -> None:
        self.low = low
        self.low_np = _numpy_type(low)
        self.names = names
        self.converted = 0  # initializers and Constant nodes, in place or copied
        self.clamped = 0
        self.flushed = 0

    def to_low(self, array: np.ndarray) -> np.ndarray:
        """Cast float32 weights to the low type, clamping what it cannot hold (counted)."""
        array = np.asarray(array, dtype=np.float32)
        limit = float(ml_dtypes.finfo(self.low_np).max)
        tiny = float(ml_dtypes.finfo(self.low_np).smallest_subnormal)
        finite = np.isfinite(array)
        over = finite & (np.abs(array) > limit)
        self.clamped += int(over.sum())
        self.flushed += int((finite & (array != 0) & (np.abs(array) < tiny / 2)).sum())
        clipped = np.where(over, np.sign(array) * limit, array)
        return clipped.astype(self.low_np)

    def convert_in_place(self, name: str, source: Source) -> None:
        """The constant ``name`` itself becomes low precision (every reader wants that)."""
        if source.initializer is not None:
            array = self.to_low(numpy_helper.to_array(source.initializer))
            source.initializer.CopyFrom(numpy_helper.from_array(array, name))
        else:
            assert source.node is not None
            value = _constant_value(source.node)
            value.CopyFrom(numpy_helper.from_array(self.to_low(numpy_helper.to_array(value)), ""))
        self.converted += 1

    def add_low_copy(self, source: Source, new_name: str) -> None:
        """A low-precision copy of a constant, as ``new_name``, beside the float32 original."""
        if source.initializer is not None:
            array = self.to_low(numpy_helper.to_array(source.initializer))
            source.scope.graph.initializer.append(numpy_helper.from_array(array, new_name))
        else:
            assert source.node is not None
            array = self.to_low(numpy_helper.to_array(_constant_value(source.node)))
            copy = helper.make_node(
                "Constant",
                [],
                [new_name],
                name=self.names(f"{source.node.name or 'Constant'}_{SUFFIX[self.low]}"),
                value=numpy_helper.from_array(array, new_name),
            )
            source.scope.insertions.setdefault(id(source.node), []).append(copy)
        self.converted += 1

    def convert_attributes(self, scope: Scope, plan: PrecisionPlan) -> None:
        """Converted nodes whose float output type is an attribute now produce the low type."""
        for node in scope.graph.node:
            if node.op_type == "Constant" or plan.precision.get(id(node)) != self.low:
                continue
            floats_out = any(plan.is_float(o) for o in node.output)
            attribute_name = DTYPE_ATTRIBUTE.get(node.op_type)
            if attribute_name and floats_out:
                set_int_attribute(node, attribute_name, self.low)
            if node.op_type == "ConstantOfShape" and floats_out:
                value = next((a for a in node.attribute if a.name == "value"), None)
                array = numpy_helper.to_array(value.t) if value else np.zeros(1, dtype=np.float32)
                tensor = numpy_helper.from_array(self.to_low(array), "value")
                if value is None:
                    node.attribute.append(helper.make_attribute("value", tensor))
                else:
                    value.t.CopyFrom(tensor)


def _constant_value(node: onnx.NodeProto) -> onnx.TensorProto:
    for attribute in node.attribute:
        if attribute.name == "value":
            return attribute.t
    raise ParityError(f"fp16: Constant {node.name!r} holds no tensor 'value'")


def _numpy_type(low: int) -> type:
    if low == TensorProto.BFLOAT16:
        return ml_dtypes.bfloat16
    return np.float16


def prune_unread_constants(
    graph: onnx.GraphProto, outer_reads: frozenset[str] = frozenset()
) -> None:
    """Drop float32 originals that every reader now takes in the low type (all scopes)."""
    reads = set(outer_reads) | {value.name for value in graph.output}
    for node in graph.node:
        reads.update(node.input)
    for node in graph.node:
        for sub in node_subgraphs(node):
            for inner in all_nodes(sub):
                reads.update(inner.input)
            reads.update(value.name for value in sub.output)
    unread = [tensor for tensor in graph.initializer if tensor.name not in reads]
    for tensor in unread:
        graph.initializer.remove(tensor)
    dead = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in reads]
    for node in dead:
        graph.node.remove(node)
    for node in graph.node:
        for sub in node_subgraphs(node):
            prune_unread_constants(sub, frozenset(reads))
