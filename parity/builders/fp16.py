"""Float16 / bfloat16 conversion that follows subgraphs and casts only at precision boundaries.

Why our own: onnxconverter-common's ``convert_float_to_float16`` leaves Kokoro's export
unloadable (a Cast it rewrites no longer matches the type ONNX Runtime infers), and both it
and ONNX Runtime's ``transformers.float16`` put a Cast pair around every blocked node, even
between two blocked neighbours, and lose track of float tensors that ``If``/``Loop``/``Scan``
bodies read from the enclosing graph (tests/test_fp16.py records both).

The conversion decides one precision per node (low, or float32 when blocked) and one
precision per float tensor (its producer's); then, for every place a tensor is read, the
reader's precision comes from the op schema: a type shared with the node's outputs follows
the node, a type only that input has (``Shape``, ``Cast``) accepts either, a fixed
``tensor(float)`` (``Resize`` scales) stays float32. A Cast goes in only where what is
available differs from what is wanted, once per tensor and precision.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from parity.core.cache import ArtifactCache, CacheKey, atomic_path, content_digest
from parity.core.errors import ParityError, first_line
from parity.core.graph import UniqueNames, load_model, node_subgraphs
from parity.core.jsonable import to_jsonable
from parity.core.memo import RunStore, source_digest

__all__ = [
    "KOKORO_BLOCK_NODES",
    "KOKORO_BLOCK_SCOPES",
    "Fp16Audit",
    "Fp16Build",
    "Fp16Options",
    "Fp16Report",
    "audit",
    "convert_cached",
    "convert_file",
    "convert_float",
    "unsupported_on_cpu",
]

LowType = Literal["float16", "bfloat16"]
FLOAT = TensorProto.FLOAT
_LOW_TYPES: dict[str, int] = {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
_SUFFIX: dict[int, str] = {
    TensorProto.FLOAT: "fp32",
    TensorProto.FLOAT16: "fp16",
    TensorProto.BFLOAT16: "bf16",
}
_SCHEMA_NAMES: dict[int, str] = {
    TensorProto.FLOAT16: "tensor(float16)",
    TensorProto.BFLOAT16: "tensor(bfloat16)",
}
_CONTROL_FLOW = {"If", "Loop", "Scan"}
# Ops that only move or select data: they round nothing, so they run in the precision of
# their float32 input instead of casting it down between two float32 neighbours. Measured on
# Kokoro: the Transpose/Squeeze between a float32 harmonic source and a float32 STFT, cast
# to float16 and back, moved the STFT's phase enough to change the waveform by 59% rms.
# Likewise, one read only by float32 nodes runs in float32, so the Cast goes before it:
# ONNX Runtime 1.32 crashes (SIGSEGV, at ORT_ENABLE_ALL) on float16 -> Transpose -> Cast ->
# MatMul, which its MatMul/Transpose fusion rewrites, but not on Cast -> Transpose -> MatMul.
_DATA_MOVEMENT = {
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
# Ops whose float output type is set by an attribute rather than by an input's type.
_DTYPE_ATTRIBUTE = {
    "Cast": "to",
    "EyeLike": "dtype",
    "RandomNormal": "dtype",
    "RandomUniform": "dtype",
    "RandomNormalLike": "dtype",
    "RandomUniformLike": "dtype",
    "Bernoulli": "dtype",
}


@dataclass(frozen=True)
class Fp16Options:
    """What to convert to, what stays float32, and whether the graph's interface changes."""

    target: LowType = "float16"
    keep_io_types: bool = True
    block_ops: frozenset[str] = frozenset()
    block_nodes: frozenset[str] = frozenset()
    block_scopes: tuple[str, ...] = ()  # node-name prefixes, e.g. "/decoder/generator/"

    @property
    def low(self) -> int:
        return _LOW_TYPES[self.target]

    def key(self) -> dict[str, object]:
        """A canonical form for cache keys (sets sorted)."""
        return {
            "target": self.target,
            "keep_io_types": self.keep_io_types,
            "block_ops": sorted(self.block_ops),
            "block_nodes": sorted(self.block_nodes),
            "block_scopes": list(self.block_scopes),
        }


# Kokoro's float16 block list, each entry measured on the full preset (tests/test_fp16.py):
# - the harmonic source and the STFT analysis of it: the STFT's phase is discontinuous at
#   near-zero bins, and in float16 it moved the generator's output by 36 to 60% rms on
#   identical inputs; kept float32, the generator is 0.11% off;
# - the duration head (projection, sigmoid, sum over 50 bins, speed, round): in float16 its
#   sums shift by ~4e-3, enough to round 2 of the 510 tokens of the context-limit case to a
#   different frame count. These hold 26k of the model's 82M weights.
KOKORO_BLOCK_SCOPES = (
    "/decoder/generator/m_source/",
    "/decoder/generator/analysis/",
    "/duration_proj/",
)
KOKORO_BLOCK_NODES = frozenset({"/Sigmoid", "/ReduceSum", "/Div", "/Round"})
KOKORO_FP16 = Fp16Options(block_nodes=KOKORO_BLOCK_NODES, block_scopes=KOKORO_BLOCK_SCOPES)


@dataclass(frozen=True)
class Fp16Report:
    """What a conversion did; sizes are the serialized models' bytes."""

    target: str
    nodes_converted: int
    nodes_blocked: int
    blocked_by: dict[str, int]  # reason -> node count
    casts_inserted: int
    initializers_converted: int
    values_clamped: int  # finite weights beyond the target's range, set to its max
    values_flushed: int  # non-zero weights below its smallest subnormal, now zero
    size_before: int
    size_after: int
    unsupported_ops: tuple[str, ...] = ()  # no CPU kernel in the target type; kept float32

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before if self.size_before else float("nan")

    def summary(self) -> str:
        blocked = ", ".join(
            f"{reason} {count}" for reason, count in sorted(self.blocked_by.items())
        )
        return (
            f"{self.target}: {self.nodes_converted} nodes converted, {self.nodes_blocked} kept "
            f"float32 ({blocked or 'none'}), {self.casts_inserted} Casts, "
            f"{self.initializers_converted} weights converted, {self.values_clamped} values "
            f"clamped, {self.values_flushed} flushed to zero, {self.size_before / 1e6:.1f} MB -> "
            f"{self.size_after / 1e6:.1f} MB ({self.size_ratio:.2f}x)"
        )


@dataclass
class _Scope:
    """One graph, the node that owns it (None for the main graph) and that node's precision."""

    graph: onnx.GraphProto
    owner: onnx.NodeProto | None = None
    inherited_block: str | None = None
    insertions: dict[int, list[onnx.NodeProto]] = field(default_factory=dict)  # after node id
    prologue: list[onnx.NodeProto] = field(default_factory=list)


@dataclass
class _Source:
    """Where a float tensor comes from: a node output, a graph input or a constant."""

    scope: _Scope
    node: onnx.NodeProto | None = None  # producer (also set for Constant nodes)
    initializer: onnx.TensorProto | None = None

    @property
    def constant(self) -> bool:
        return self.initializer is not None or (
            self.node is not None and self.node.op_type == "Constant"
        )


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value in every scope, from strict ONNX type inference.

    The input is checked first: a conversion of a graph that is not valid ONNX could only
    move its fault somewhere harder to find.
    """
    try:
        onnx.checker.check_model(model)
        typed = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as error:
        raise ParityError(
            f"fp16: the input model is not valid ONNX ({type(error).__name__}: "
            f"{first_line(error, 200)}); fix or re-export it before converting"
        ) from error
    return _declared_types(typed)


def _declared_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element types that a (shape-inferred) model declares, in every scope."""
    types: dict[str, int] = {}
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for info in [*graph.input, *graph.output, *graph.value_info]:
            if info.type.HasField("tensor_type") and info.type.tensor_type.elem_type:
                types[info.name] = info.type.tensor_type.elem_type
        for tensor in graph.initializer:
            types[tensor.name] = tensor.data_type
        for node in graph.node:
            if node.op_type == "Constant":
                for attribute in node.attribute:
                    if attribute.name == "value":
                        types[node.output[0]] = attribute.t.data_type
            graphs.extend(node_subgraphs(node))
    return types


_Formal = onnx.defs.OpSchema.FormalParameter


@dataclass(frozen=True)
class _Roles:
    """How a node's float inputs read (follow the node, any precision, float32 only)."""

    inputs: tuple[str, ...]  # per input: "node", "any" or "fp32"
    inputs_low_ok: tuple[bool, ...]  # per input: its schema type admits the low type
    outputs_low_ok: tuple[bool, ...]


def _roles(node: onnx.NodeProto, opset: dict[str, int], low: int) -> _Roles:
    """Read the op schema: which inputs share the outputs' type, which accept anything."""
    n_in, n_out = len(node.input), len(node.output)
    if node.op_type in _CONTROL_FLOW:
        return _Roles(("node",) * n_in, (True,) * n_in, (True,) * n_out)
    domain = node.domain if node.domain not in ("", "ai.onnx") else ""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset.get(domain, 1), domain)
    except onnx.defs.SchemaError:
        return _Roles(("fp32",) * n_in, (False,) * n_in, (False,) * n_out)
    low_str = _SCHEMA_NAMES[low]
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    formals = list(schema.inputs) + list(schema.outputs)
    uses = Counter(formal.type_str for formal in formals)

    variadic = onnx.defs.OpSchema.FormalParameterOption.Variadic

    def formal_at(params: Sequence[_Formal], index: int) -> _Formal | None:
        if index < len(params):
            return params[index]
        last = params[-1] if params else None
        return last if last is not None and last.option == variadic else None

    def low_ok(type_str: str) -> bool:
        return low_str in allowed.get(type_str, {type_str})

    inputs: list[str] = []
    inputs_low_ok: list[bool] = []
    for index in range(n_in):
        formal = formal_at(schema.inputs, index)
        type_str = formal.type_str if formal is not None else "tensor(float)"
        single = formal is not None and formal.option != variadic
        if type_str in allowed and uses[type_str] == 1 and single:
            inputs.append("any" if low_ok(type_str) else "fp32")
        elif type_str not in allowed:
            inputs.append("node" if low_ok(type_str) else "fp32")
        else:
            inputs.append("node")
        inputs_low_ok.append(low_ok(type_str))
    outputs = []
    for index in range(n_out):
        formal = formal_at(schema.outputs, index)
        outputs.append(low_ok(formal.type_str if formal is not None else "tensor(float)"))
    return _Roles(tuple(inputs), tuple(inputs_low_ok), tuple(outputs))


class _Converter:
    def __init__(self, model: onnx.ModelProto, options: Fp16Options, unsupported: set[str]) -> None:
        self.model = model
        self.options = options
        self.low = options.low
        self.low_np = _numpy_type(self.low)
        self.unsupported = unsupported
        self.types = _elem_types(model)
        self.opset = {
            o.domain if o.domain != "ai.onnx" else "": o.version for o in model.opset_import
        }
        self.names = UniqueNames(model)
        self.scopes: list[_Scope] = []
        self.sources: dict[str, _Source] = {}
        self.precision: dict[int, int] = {}  # node id -> FLOAT or low
        self.roles: dict[int, _Roles] = {}
        self.order: list[tuple[_Scope, onnx.NodeProto]] = []
        self.available: dict[str, int] = {}  # float32 value -> precision it has
        self.converted: dict[tuple[str, int], str] = {}
        self.blocked_by: Counter[str] = Counter()
        self.nodes_converted = 0
        self.casts = 0
        self.initializers_converted = 0
        self.clamped = 0
        self.flushed = 0

    # -- pass 1: scopes, sources, node precisions, available precisions ----------------

    def is_float(self, name: str) -> bool:
        return bool(name) and self.types.get(name) == FLOAT

    def walk(self, scope: _Scope) -> None:
        self.scopes.append(scope)
        graph = scope.graph
        interface = self.interface_precision(scope)
        for value in graph.input:
            self.sources[value.name] = _Source(scope)
            if self.is_float(value.name):
                self.available[value.name] = interface
        for tensor in graph.initializer:
            self.sources[tensor.name] = _Source(scope, initializer=tensor)
            if self.is_float(tensor.name):
                self.available[tensor.name] = FLOAT
        for node in graph.node:
            for output in node.output:
                self.sources[output] = _Source(scope, node=node)
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
                self.walk(_Scope(sub, owner=node, inherited_block=blocked))

    def settle_data_movement(self) -> None:
        """Data-movement nodes whose every reader runs in float32 run in float32 too."""
        readers: dict[str, list[onnx.NodeProto | _Scope | None]] = {}  # None: float32 only
        for _, node in self.order:
            roles = self.roles[id(node)]
            for index, name in enumerate(node.input):
                if self.is_float(name) and roles.inputs[index] != "any":
                    reader = None if roles.inputs[index] == "fp32" else node
                    readers.setdefault(name, []).append(reader)
        for scope in self.scopes:
            for value in scope.graph.output:
                readers.setdefault(value.name, []).append(scope)
        for _, node in reversed(self.order):
            if node.op_type not in _DATA_MOVEMENT or self.precision[id(node)] != self.low:
                continue
            outputs = [output for output in node.output if self.is_float(output)]
            wants = [self.wanted_by(r) for output in outputs for r in readers.get(output, [])]
            if wants and all(want == FLOAT for want in wants):
                self.precision[id(node)] = FLOAT
                self.nodes_converted -= 1
                self.blocked_by["read only by float32 nodes"] += 1
                for output in outputs:
                    self.available[output] = FLOAT

    def wanted_by(self, reader: onnx.NodeProto | _Scope | None) -> int:
        if reader is None:
            return FLOAT
        if isinstance(reader, _Scope):
            return self.interface_precision(reader)
        return self.precision[id(reader)]

    def interface_precision(self, scope: _Scope) -> int:
        if scope.owner is None:
            return FLOAT if self.options.keep_io_types else self.low
        return self.precision[id(scope.owner)]

    def schema_refuses(self, node: onnx.NodeProto, roles: _Roles) -> bool:
        """A float input that must share the node's type, in a type without the low one."""
        return any(
            self.is_float(name) and roles.inputs[index] == "node" and not roles.inputs_low_ok[index]
            for index, name in enumerate(node.input)
        )

    def reads_float32(self, node: onnx.NodeProto, roles: _Roles) -> bool:
        """A computed (not constant) float input that is float32 where the node runs."""
        return any(
            self.is_float(name)
            and roles.inputs[index] == "node"
            and self.available.get(name) == FLOAT
            and not self.sources[name].constant
            for index, name in enumerate(node.input)
        )

    def touches_float(self, node: onnx.NodeProto, roles: _Roles) -> bool:
        """Computes in float: a float output, a float input it reads as such, a float body."""
        if any(self.is_float(name) for name in node.output):
            return True
        if any(
            self.is_float(name) and (index >= len(roles.inputs) or roles.inputs[index] != "any")
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
        self, scope: _Scope, node: onnx.NodeProto, roles: _Roles
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
        if not _known_schema(node):
            return f"unknown op {node.domain or 'ai.onnx'}.{node.op_type}"
        if self.schema_refuses(node, roles):
            return f"{node.op_type}: no {self.options.target} in its schema"
        if node.op_type in _DATA_MOVEMENT and self.reads_float32(node, roles):
            return "moves float32 data"
        return None

    def decide(self, scope: _Scope, node: onnx.NodeProto) -> None:
        roles = _roles(node, self.opset, self.low)
        self.roles[id(node)] = roles
        reason = self.block_reason(scope, node, roles)
        precision = FLOAT if reason else self.low
        self.precision[id(node)] = precision
        if self.touches_float(node, roles):
            if reason:
                self.blocked_by[reason] += 1
            else:
                self.nodes_converted += 1
        for index, output in enumerate(node.output):
            if self.is_float(output):
                low_ok = index < len(roles.outputs_low_ok) and roles.outputs_low_ok[index]
                self.available[output] = precision if low_ok else FLOAT
        if node.op_type in _CONTROL_FLOW:
            for sub in node_subgraphs(node):
                for value in sub.input:
                    if self.is_float(value.name):
                        self.available[value.name] = precision

    # -- pass 2: who wants what ---------------------------------------------------------

    def reads(self) -> Iterator[tuple[object, int, str, int]]:
        """(holder, index, value, wanted) for every read of a float32 value that has a want.

        ``holder`` is a node (its input ``index``) or a graph (its output ``index``); inputs
        that take any precision (``Shape``, ``Cast``) are not reads in this sense.
        """
        for scope in self.scopes:
            for node in scope.graph.node:
                if node.op_type == "Constant":
                    continue
                roles, precision = self.roles[id(node)], self.precision[id(node)]
                for index, name in enumerate(node.input):
                    if not self.is_float(name):
                        continue
                    role = roles.inputs[index] if index < len(roles.inputs) else "node"
                    if role != "any":
                        yield node, index, name, precision if role == "node" else FLOAT
            interface = self.interface_precision(scope)
            for index, value in enumerate(scope.graph.output):
                if self.is_float(value.name):
                    yield scope.graph, index, value.name, interface

    # -- pass 3: constants converted in place or copied; Casts where precisions meet ----

    def run(self) -> None:
        self.walk(_Scope(self.model.graph))
        self.settle_data_movement()
        self.rename_low_outputs()
        reads = list(self.reads())
        wants: dict[str, set[int]] = {}
        for _, _, name, wanted in reads:
            wants.setdefault(name, set()).add(wanted)
        for name, wanted_set in wants.items():
            source = self.sources.get(name)
            if source is not None and source.constant and wanted_set == {self.low}:
                self.convert_constant_in_place(name, source)
        for holder, index, name, wanted in reads:
            if self.available[name] == wanted:
                continue
            replacement = self.in_precision(name, wanted)
            if isinstance(holder, onnx.NodeProto):
                holder.input[index] = replacement
            else:
                holder.output[index].name = replacement  # type: ignore[attr-defined]
        # Innermost scopes first: rebuilding a graph's node list copies its nodes, and with
        # them the subgraphs they hold, so a subgraph must be final before its parent is.
        for scope in reversed(self.scopes):
            self.convert_attributes(scope)
            self.place_insertions(scope)
            self.retype_interface(scope)

    def rename_low_outputs(self) -> None:
        """A main-graph output kept float32 but computed in low precision: Cast to its name."""
        if not self.options.keep_io_types:
            return
        main = self.scopes[0]
        for value in main.graph.output:
            name = value.name
            if not self.is_float(name) or self.available[name] != self.low:
                continue
            source = self.sources[name]
            if source.node is None:
                continue
            inner = self.names(f"{name}_{_SUFFIX[self.low]}")
            self.rename_everywhere(name, inner)
            self.types[inner] = FLOAT
            self.available[inner] = self.low
            self.sources[inner] = source
            cast = self.cast_node(inner, name, FLOAT)
            self.available[name] = FLOAT
            main.insertions.setdefault(id(source.node), []).append(cast)

    def rename_everywhere(self, old: str, new: str) -> None:
        for scope in self.scopes:
            if scope.owner is not None:
                for value in scope.graph.output:
                    if value.name == old:
                        value.name = new
            for node in scope.graph.node:
                for index, name in enumerate(node.input):
                    if name == old:
                        node.input[index] = new
                for index, name in enumerate(node.output):
                    if name == old:
                        node.output[index] = new

    def cast_node(self, source: str, target: str, to: int) -> onnx.NodeProto:
        self.casts += 1
        return helper.make_node(
            "Cast", [source], [target], name=self.names(f"Cast_{target}"), to=to
        )

    def in_precision(self, name: str, wanted: int) -> str:
        """``name`` in the ``wanted`` precision: a converted constant or a Cast, made once."""
        key = (name, wanted)
        if key in self.converted:
            return self.converted[key]
        source = self.sources[name]
        new_name = self.names(f"{name}_{_SUFFIX[wanted]}")
        if source.constant and wanted != self.low:
            raise AssertionError(f"constant {name} is float32 already")
        if source.initializer is not None:
            array = self.to_low(numpy_helper.to_array(source.initializer))
            source.scope.graph.initializer.append(numpy_helper.from_array(array, new_name))
            self.initializers_converted += 1
        elif source.constant:
            assert source.node is not None
            array = self.to_low(numpy_helper.to_array(_constant_value(source.node)))
            copy = helper.make_node(
                "Constant",
                [],
                [new_name],
                name=self.names(f"{source.node.name or 'Constant'}_{_SUFFIX[wanted]}"),
                value=numpy_helper.from_array(array, new_name),
            )
            source.scope.insertions.setdefault(id(source.node), []).append(copy)
            self.initializers_converted += 1
        else:
            cast = self.cast_node(name, new_name, wanted)
            if source.node is None:
                source.scope.prologue.append(cast)
            else:
                source.scope.insertions.setdefault(id(source.node), []).append(cast)
        self.converted[key] = new_name
        self.types[new_name] = FLOAT
        self.available[new_name] = wanted
        return new_name

    def convert_constant_in_place(self, name: str, source: _Source) -> None:
        if source.initializer is not None:
            array = self.to_low(numpy_helper.to_array(source.initializer))
            source.initializer.CopyFrom(numpy_helper.from_array(array, name))
        else:
            assert source.node is not None
            value = _constant_value(source.node)
            value.CopyFrom(numpy_helper.from_array(self.to_low(numpy_helper.to_array(value)), ""))
        self.initializers_converted += 1
        self.available[name] = self.low

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

    def convert_attributes(self, scope: _Scope) -> None:
        """Converted nodes whose float output type is an attribute now produce the low type."""
        for node in scope.graph.node:
            if node.op_type == "Constant" or self.precision.get(id(node)) != self.low:
                continue
            floats_out = any(self.is_float(o) for o in node.output)
            attribute_name = _DTYPE_ATTRIBUTE.get(node.op_type)
            if attribute_name and floats_out:
                _set_int_attribute(node, attribute_name, self.low)
            if node.op_type == "ConstantOfShape" and floats_out:
                value = next((a for a in node.attribute if a.name == "value"), None)
                array = numpy_helper.to_array(value.t) if value else np.zeros(1, dtype=np.float32)
                tensor = numpy_helper.from_array(self.to_low(array), "value")
                if value is None:
                    node.attribute.append(helper.make_attribute("value", tensor))
                else:
                    value.t.CopyFrom(tensor)

    def place_insertions(self, scope: _Scope) -> None:
        nodes: list[onnx.NodeProto] = list(scope.prologue)
        for node in scope.graph.node:
            nodes.append(node)
            nodes.extend(scope.insertions.get(id(node), []))
        del scope.graph.node[:]
        scope.graph.node.extend(nodes)

    def retype_interface(self, scope: _Scope) -> None:
        """Inputs and outputs carry the precision they now have; inner value_info is dropped."""
        del scope.graph.value_info[:]
        for value in [*scope.graph.input, *scope.graph.output]:
            if value.name in self.available and value.type.HasField("tensor_type"):
                value.type.tensor_type.elem_type = self.available[value.name]


def _known_schema(node: onnx.NodeProto) -> bool:
    if node.op_type in _CONTROL_FLOW:
        return True
    domain = node.domain if node.domain not in ("", "ai.onnx") else ""
    return onnx.defs.has(node.op_type, domain)


def _constant_value(node: onnx.NodeProto) -> onnx.TensorProto:
    for attribute in node.attribute:
        if attribute.name == "value":
            return attribute.t
    raise ParityError(f"fp16: Constant {node.name!r} holds no tensor 'value'")


def _set_int_attribute(node: onnx.NodeProto, name: str, value: int) -> None:
    for attribute in node.attribute:
        if attribute.name == name:
            if attribute.i == FLOAT:
                attribute.i = value
            return
    node.attribute.append(helper.make_attribute(name, value))


def _numpy_type(low: int) -> type:
    if low == TensorProto.BFLOAT16:
        return ml_dtypes.bfloat16
    return np.float16


def unsupported_on_cpu(model: onnx.ModelProto, target: LowType) -> set[str]:
    """Op types of ``model`` that ONNX Runtime's CPU provider has no ``target`` kernel for.

    Each op is tried alone, in a one-node model with its real attributes and its float
    inputs in ``target``; a session that cannot find a kernel names the op. float16 needs
    no probe: ONNX Runtime runs float16 nodes without a CPU kernel in float32, with Casts.
    """
    if target == "float16":
        return set()
    import onnxruntime as ort

    types = _elem_types(model)
    low = _LOW_TYPES[target]
    opset = list(model.opset_import)
    tried: dict[tuple[str, str], bool] = {}
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            graphs.extend(node_subgraphs(node))
            key = (node.domain, node.op_type)
            if key in tried or node.op_type in _CONTROL_FLOW or node.op_type == "Constant":
                continue
            if not any(types.get(n) == FLOAT for n in [*node.input, *node.output] if n):
                continue
            probe = _probe_model(node, types, low, opset)
            options = ort.SessionOptions()
            options.log_severity_level = 4
            try:
                ort.InferenceSession(probe.SerializeToString(), options, ["CPUExecutionProvider"])
                tried[key] = True
            except Exception:  # "no kernel" or any other refusal: keep float32
                tried[key] = False
    return {op for (_, op), ok in tried.items() if not ok}


def _probe_model(
    node: onnx.NodeProto, types: dict[str, int], low: int, opset: list[onnx.OperatorSetIdProto]
) -> onnx.ModelProto:
    def retyped(name: str) -> int:
        elem = types.get(name, FLOAT)
        return low if elem == FLOAT else elem

    inputs = [
        helper.make_tensor_value_info(name, retyped(name), None)
        for name in dict.fromkeys(n for n in node.input if n)
    ]
    outputs = [helper.make_tensor_value_info(name, retyped(name), None) for name in node.output]
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    if node.op_type in _DTYPE_ATTRIBUTE:
        _set_int_attribute(copy, _DTYPE_ATTRIBUTE[node.op_type], low)
    graph = helper.make_graph([copy], "probe", inputs, outputs)
    model = helper.make_model(graph, opset_imports=opset)
    model.ir_version = 9
    return model


def convert_float(
    model: onnx.ModelProto, options: Fp16Options = Fp16Options()
) -> tuple[onnx.ModelProto, Fp16Report]:
    """A copy of ``model`` with float32 computation in ``options.target``, and a report."""
    unknown_target = options.target not in _LOW_TYPES
    if unknown_target:
        raise ParityError(f"fp16: unknown target {options.target!r}; use float16 or bfloat16")
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    unsupported = unsupported_on_cpu(model, options.target)
    converter = _Converter(converted, options, unsupported)
    converter.run()
    _prune_unread_constants(converted.graph)
    report = Fp16Report(
        target=options.target,
        nodes_converted=converter.nodes_converted,
        nodes_blocked=sum(converter.blocked_by.values()),
        blocked_by=dict(converter.blocked_by),
        casts_inserted=converter.casts,
        initializers_converted=converter.initializers_converted,
        values_clamped=converter.clamped,
        values_flushed=converter.flushed,
        size_before=model.ByteSize(),
        size_after=converted.ByteSize(),
        unsupported_ops=tuple(sorted(unsupported)),
    )
    return converted, report


def _prune_unread_constants(
    graph: onnx.GraphProto, outer_reads: frozenset[str] = frozenset()
) -> None:
    """Drop float32 originals that every reader now takes in the low type (all scopes)."""
    reads = set(outer_reads) | {value.name for value in graph.output}
    for node in graph.node:
        reads.update(node.input)
    for node in graph.node:
        for sub in node_subgraphs(node):
            for inner in _all_nodes(sub):
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
            _prune_unread_constants(sub, frozenset(reads))


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in graph.node:
        yield node
        for sub in node_subgraphs(node):
            yield from _all_nodes(sub)


def check(model: onnx.ModelProto) -> None:
    """``onnx.checker`` with full (strict) type inference; one error line on failure."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as error:
        raise ParityError(
            f"fp16: the converted model fails onnx.checker: {first_line(error)}"
        ) from error


def convert_file(source: Path, target: Path, options: Fp16Options = Fp16Options()) -> Fp16Report:
    """Convert an ONNX file; the output is checked, then written atomically (sizes on disk)."""
    model = load_model(source)
    converted, report = convert_float(model, options)
    check(converted)
    with atomic_path(Path(target)) as temporary:
        onnx.save(converted, str(temporary))
        size_after = temporary.stat().st_size
    return replace(report, size_before=Path(source).stat().st_size, size_after=size_after)


@dataclass(frozen=True)
class Fp16Build:
    """A converted model in the cache, its report, and whether it was there already."""

    path: Path
    report: Fp16Report
    cached: bool


def convert_cached(cache: ArtifactCache, source: Path, options: Fp16Options) -> Fp16Build:
    """``convert_file`` through the cache, keyed by the source file and the options.

    The source is named by its cache file (itself a content hash of what built it) and size;
    this module's text is in the key, so a converter change never reuses an old file.
    """
    source = Path(source)
    key = CacheKey(
        "fp16",
        {
            "source": content_digest(source),
            "options": options.key(),
            "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
            "onnx": onnx.__version__,
        },
    )
    built: list[Fp16Report] = []

    def build(temporary: Path) -> dict[str, object]:
        built.append(convert_file(source, temporary, options))
        return {"report": to_jsonable(built[0])}

    artefact = cache.get_or_build(key, ".onnx", build)
    if built:
        return Fp16Build(artefact.path, built[0], cached=False)
    fields = dict(artefact.meta["report"])
    fields.pop("passed", None)
    fields["unsupported_ops"] = tuple(fields.get("unsupported_ops", ()))
    return Fp16Build(artefact.path, Fp16Report(**fields), cached=True)


@dataclass(frozen=True)
class Fp16Audit:
    """What a converter's output gets wrong, whichever converter made it."""

    checker_error: str | None
    runtime_error: str | None
    casts: int
    redundant_casts: tuple[str, ...]  # reading another Cast, or to the type they have
    duplicate_names: tuple[str, ...]
    changed_interface: tuple[str, ...] = ()  # graph inputs/outputs whose type changed

    def __bool__(self) -> bool:
        problems = (self.redundant_casts, self.duplicate_names, self.changed_interface)
        return not (self.checker_error or self.runtime_error or any(problems))

    def summary(self) -> str:
        problems = [
            f"onnx.checker: {self.checker_error}" if self.checker_error else "",
            f"ONNX Runtime: {self.runtime_error}" if self.runtime_error else "",
            f"{len(self.redundant_casts)} redundant Casts ({', '.join(self.redundant_casts[:3])})"
            if self.redundant_casts
            else "",
            f"duplicate names {', '.join(self.duplicate_names[:3])}"
            if self.duplicate_names
            else "",
            f"interface type changed: {', '.join(self.changed_interface)}"
            if self.changed_interface
            else "",
        ]
        found = "; ".join(p for p in problems if p)
        return f"{self.casts} Casts; " + (found or "valid, no redundant Casts")


def audit(model: onnx.ModelProto, original: onnx.ModelProto | None = None) -> Fp16Audit:
    """Check a converted model: strict checker, an ONNX Runtime session, redundant Casts.

    Given the ``original``, also that the graph's inputs and outputs kept their types (what
    ``keep_io_types`` promises).
    """
    try:
        onnx.checker.check_model(model, full_check=True)
        checker_error = None
    except Exception as error:  # the message is the finding
        checker_error = first_line(error, 200)
    runtime_error = None
    try:
        from parity.core.ort_session import open_session

        open_session(Path("<converted>"), model_bytes=model.SerializeToString())
    except ParityError as error:
        runtime_error = str(error).split("(", 1)[-1].rsplit(")", 1)[0]
    casts, redundant = _casts(model)
    nodes = list(_all_nodes(model.graph))
    node_names = Counter(node.name for node in nodes if node.name)
    produced = Counter(output for node in nodes for output in node.output if output)
    # Node names and value names are separate namespaces in ONNX; each must be unique.
    duplicates = [name for counts in (node_names, produced) for name, n in counts.items() if n > 1]
    changed: list[str] = []
    if original is not None:
        before = _interface_types(original)
        changed = [name for name, kind in _interface_types(model).items() if before[name] != kind]
        already = set(_casts(original)[1])  # once: each call infers the whole graph's shapes
        redundant = [name for name in redundant if name not in already]
    return Fp16Audit(
        checker_error, runtime_error, casts, tuple(redundant), tuple(duplicates), tuple(changed)
    )


def audit_files(path: Path, original: Path, runs: RunStore | None = None) -> Fp16Audit:
    """``audit`` of the converted file at ``path`` against ``original``, from the run store
    when these two files were audited with this code and these versions before (a strict
    check of a full-size model takes about a minute)."""

    def compute() -> dict[str, object]:
        return to_jsonable(audit(load_model(path), load_model(original)))

    parts = {
        "converted": content_digest(path),
        "original": content_digest(original),
        "code": source_digest(("builders/fp16.py", "judge/runners.py"), ("onnx", "onnxruntime")),
    }
    found = (runs or RunStore(None)).record("fp16-audit", parts, compute)
    return Fp16Audit(
        found["checker_error"],
        found["runtime_error"],
        int(found["casts"]),
        tuple(found["redundant_casts"]),
        tuple(found["duplicate_names"]),
        tuple(found["changed_interface"]),
    )


def _casts(model: onnx.ModelProto) -> tuple[int, list[str]]:
    """How many Casts, and which are redundant: reading a Cast, or to the type they have."""
    try:
        types = _declared_types(onnx.shape_inference.infer_shapes(model))
    except Exception:  # the checker reports why; judge the Casts without types
        types = {}
    nodes = list(_all_nodes(model.graph))
    producers = {output: node for node in nodes for output in node.output}
    casts = [node for node in nodes if node.op_type == "Cast"]
    redundant = []
    for cast in casts:
        producer = producers.get(cast.input[0])
        to = next(attribute.i for attribute in cast.attribute if attribute.name == "to")
        if (producer is not None and producer.op_type == "Cast") or types.get(cast.input[0]) == to:
            redundant.append(cast.name or cast.output[0])
    return len(casts), redundant


def _interface_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    return {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}


def report_json(report: Fp16Report) -> str:
    return json.dumps(to_jsonable(report), indent=2)
