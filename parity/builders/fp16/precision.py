"""One precision per node (low, or float32 when blocked) and the precision every float tensor
is available in; the block lists, unsupported kernels, schemas and data movement decide."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import onnx

from parity.builders.fp16.schema import (
    CONTROL_FLOW,
    FLOAT,
    Roles,
    elem_types,
    known_schema,
    roles,
)
from parity.builders.fp16.settings import Fp16Options
from parity.core.graph import node_subgraphs

__all__ = ["DATA_MOVEMENT", "PrecisionPlan", "Scope", "Source"]

# Ops that only move or select data: they round nothing, so they run in the precision of
# their float32 input instead of casting it down between two float32 neighbours. Measured on
# Kokoro: the Transpose/Squeeze between a float32 harmonic source and a float32 STFT, cast
# to float16 and back, moved the STFT's phase enough to change the waveform by 59% rms.
# Likewise, one read only by float32 nodes runs in float32, so the Cast goes before it:
# ONNX Runtime 1.32 crashes (SIGSEGV, at ORT_ENABLE_ALL) on float16 -> Transpose -> Cast ->
# MatMul, which its MatMul/Transpose fusion rewrites, but not on Cast -> Transpose -> MatMul.
DATA_MOVEMENT = {
    "Concat",
    "DepthToSpace",
    "Expand",
    "Flatten",
    "Gather",
    "GatherElements",
    "GatherND",
    "Identity",
    "Pad",
    "Reshape",
    "Slice",
    "SpaceToDepth",
    "Split",
    "Squeeze",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Where",
}


@dataclass
class Scope:
    """One graph, the node that owns it (None for the main graph) and that node's precision."""

    graph: onnx.GraphProto
    owner: onnx.NodeProto | None = None
    inherited_block: str | None = None
    insertions: dict[int, list[onnx.NodeProto]] = field(default_factory=dict)  # after node id
    prologue: list[onnx.NodeProto] = field(default_factory=list)


@dataclass
class Source:
    """Where a float tensor comes from: a node output, a graph input or a constant."""

    scope: Scope
    node: onnx.NodeProto | None = None  # producer (also set for Constant nodes)
    initializer: onnx.TensorProto | None = None

    @property
    def constant(self) -> bool:
        return self.initializer is not None or (
            self.node is not None and self.node.op_type == "Constant"
        )


class PrecisionPlan:
    """Walks every scope once, deciding each node's precision and each float tensor's.

    A float tensor is available in its producer's precision; later parts add the values they
    make (Casts, converted copies) to ``types``, ``sources`` and ``available``.
    """

    def __init__(self, model: onnx.ModelProto, options: Fp16Options, unsupported: set[str]) -> None:
        self.model = model
        self.options = options
        self.low = options.low
        self.unsupported = unsupported
        self.types = elem_types(model)
        self.opset = {
            o.domain if o.domain != "ai.onnx" else "": o.version for o in model.opset_import
        }
        self.scopes: list[Scope] = []
        self.sources: dict[str, Source] = {}
        self.precision: dict[int, int] = {}  # node id -> FLOAT or low
        self.roles: dict[int, Roles] = {}
        self.order: list[tuple[Scope, onnx.NodeProto]] = []
        self.available: dict[str, int] = {}  # float32 value -> precision it has
        self.blocked_by: Counter[str] = Counter()
        self.nodes_converted = 0

    def assign(self) -> None:
        """Decide every node's precision, then settle data movement read only in float32."""
        self.walk(Scope(self.model.graph))
        self.settle_data_movement()

    def is_float(self, name: str) -> bool:
        return bool(name) and self.types.get(name) == FLOAT

    def walk(self, scope: Scope) -> None:
        self.scopes.append(scope)
        graph = scope.graph
        interface = self.interface_precision(scope)
        for value in graph.input:
            self.sources[value.name] = Source(scope)
            if self.is_float(value.name):
                self.available[value.name] = interface
        for tensor in graph.initializer:
            self.sources[tensor.name] = Source(scope, initializer=tensor)
            if self.is_float(tensor.name):
                self.available[tensor.name] = FLOAT
        for node in graph.node:
            for output in node.output:
                self.sources[output] = Source(scope, node=node)
            if node.op_type == "Constant":
                if self.is_float(node.output[0]):
                    self.available[node.output[0]] = FLOAT
                continue
            self.decide(scope, node)
            self.order.append((scope, node))
            for sub in node_subgraphs(node):
                blocked = scope.inherited_block or (
                    f"inside blocked {node.op_type}" if self.precision[id(node)] == FLOAT else None
                )
                self.walk(Scope(sub, owner=node, inherited_block=blocked))

    def settle_data_movement(self) -> None:
        """Data-movement nodes whose every reader runs in float32 run in float32 too."""
        readers: dict[str, list[onnx.NodeProto | Scope | None]] = {}  # None: float32 only
        for _, node in self.order:
            node_roles = self.roles[id(node)]
            for index, name in enumerate(node.input):
                if self.is_float(name) and node_roles.inputs[index] != "any":
                    reader = None if node_roles.inputs[index] == "fp32" else node
                    readers.setdefault(name, []).append(reader)
        for scope in self.scopes:
            for value in scope.graph.output:
                readers.setdefault(value.name, []).append(scope)
        for _, node in reversed(self.order):
            if node.op_type not in DATA_MOVEMENT or self.precision[id(node)] != self.low:
                continue
            outputs = [output for output in node.output if self.is_float(output)]
            wants = [self.wanted_by(r) for output in outputs for r in readers.get(output, [])]
            if wants and all(want == FLOAT for want in wants):
                self.precision[id(node)] = FLOAT
                self.nodes_converted -= 1
                self.blocked_by["read only by float32 nodes"] += 1
                for output in outputs:
                    self.available[output] = FLOAT

    def wanted_by(self, reader: onnx.NodeProto | Scope | None) -> int:
        if reader is None:
            return FLOAT
        if isinstance(reader, Scope):
            return self.interface_precision(reader)
        return self.precision[id(reader)]

    def interface_precision(self, scope: Scope) -> int:
        if scope.owner is None:
            return FLOAT if self.options.keep_io_types else self.low
        return self.precision[id(scope.owner)]

    def schema_refuses(self, node: onnx.NodeProto, node_roles: Roles) -> bool:
        """A float input that must share the node's type, in a type without the low one."""
        return any(
            self.is_float(name)
            and node_roles.inputs[index] == "node"
            and not node_roles.inputs_low_ok[index]
            for index, name in enumerate(node.input)
        )

    def reads_float32(self, node: onnx.NodeProto, node_roles: Roles) -> bool:
        """A computed (not constant) float input that is float32 where the node runs."""
        return any(
            self.is_float(name)
            and node_roles.inputs[index] == "node"
            and self.available.get(name) == FLOAT
            and not self.sources[name].constant
            for index, name in enumerate(node.input)
        )

    def touches_float(self, node: onnx.NodeProto, node_roles: Roles) -> bool:
        """Computes in float: a float output, a float input it reads as such, a float body."""
        if any(self.is_float(name) for name in node.output):
            return True
        if any(
            self.is_float(name)
            and (index >= len(node_roles.inputs) or node_roles.inputs[index] != "any")
            for index, name in enumerate(node.input)
        ):
            return True
        return any(
            self.is_float(inner_name)
            for sub in node_subgraphs(node)
            for inner in sub.node
            for inner_name in [*inner.input, *inner.output]
        )

    def block_reason(  # noqa: PLR0911 - one return per reason, in order of precedence
        self, scope: Scope, node: onnx.NodeProto, node_roles: Roles
    ) -> str | None:
        """Why ``node`` stays float32, or None when it runs in the low type."""
        if scope.inherited_block:
            return scope.inherited_block
        if node.op_type in self.options.block_ops:
            return f"--block-op {node.op_type}"
        if node.name in self.options.block_nodes:
            return "--block-node"
        if node.name.startswith(self.options.block_scopes):
            return "--block-scope"
        if node.op_type in self.unsupported:
            return f"no CPU {self.options.target} kernel"
        if not known_schema(node):
            return f"unknown op {node.domain or 'ai.onnx'}.{node.op_type}"
        if self.schema_refuses(node, node_roles):
            return f"{node.op_type}: no {self.options.target} in its schema"
        if node.op_type in DATA_MOVEMENT and self.reads_float32(node, node_roles):
            return "moves float32 data"
        return None

    def decide(self, scope: Scope, node: onnx.NodeProto) -> None:
        node_roles = roles(node, self.opset, self.low)
        self.roles[id(node)] = node_roles
        reason = self.block_reason(scope, node, node_roles)
        precision = FLOAT if reason else self.low
        self.precision[id(node)] = precision
        if self.touches_float(node, node_roles):
            if reason:
                self.blocked_by[reason] += 1
            else:
                self.nodes_converted += 1
        for index, output in enumerate(node.output):
            if self.is_float(output):
                low_ok = index < len(node_roles.outputs_low_ok) and node_roles.outputs_low_ok[index]
                self.available[output] = precision if low_ok else FLOAT
        if node.op_type in CONTROL_FLOW:
            for sub in node_subgraphs(node):
                for value in sub.input:
                    if self.is_float(value.name):
                        self.available[value.name] = precision
