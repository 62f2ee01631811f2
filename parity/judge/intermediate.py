"""Intermediate tensors: expose them in an ONNX graph, capture them in PyTorch, pair them up.

Exposing a tensor is a graph transform (add it to the graph outputs), as in Polygraphy's
"mark all outputs". The TorchScript exporter names nodes after module scopes
(``/decoder/generator/resblocks.2/Conv``), but a scope is not a module path: it is the
module's unqualified name nested under the modules on the call stack, and two modules can
share one. ``module_scopes`` derives the map from a real forward pass, and a module's
tensor is then found among the few values its scope hands out, by shape and value.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, shape_inference

from parity.core.errors import ParityError
from parity.core.graph import GraphIndex
from parity.core.scopes import unqualified_name, variant_pattern

__all__ = [
    "ScopeBoundary",
    "expose",
    "float_source",
    "module_scopes",
    "onnx_scope_prefixes",
    "scope_boundary",
    "scope_nodes",
    "value_types",
]


@dataclass(frozen=True)
class ScopeBoundary:
    """The values a scope reads from outside it and the values it hands out, in node order."""

    prefix: str
    node_count: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def onnx_scope_prefixes(model: onnx.ModelProto) -> Counter[str]:
    """Every scope prefix that node names start with (``/a/``, ``/a/b/``), with node counts."""
    prefixes: Counter[str] = Counter()
    for node in model.graph.node:
        parts = node.name.split("/")[1:-1] if node.name.startswith("/") else []
        for depth in range(1, len(parts) + 1):
            prefixes["/" + "/".join(parts[:depth]) + "/"] += 1
    return prefixes


def _is_constant(index: GraphIndex, name: str) -> bool:
    """Initializers, Constant nodes, the Identity copies the exporter makes of weights, and a
    QDQ graph's dequantized weights and biases (DequantizeLinear of constants)."""
    if name in index.initializers:
        return True
    producer = index.producer(name)
    if producer is None:
        return False
    if producer.op_type == "Constant":
        return True
    if producer.op_type == "DequantizeLinear":
        return all(_is_constant(index, read) for read in producer.input if read)
    return producer.op_type == "Identity" and producer.input[0] in index.initializers


def scope_boundary(model: onnx.ModelProto, prefix: str | Sequence[str]) -> ScopeBoundary:
    """Inputs and outputs of the nodes whose name starts with ``prefix`` (constants left out).

    Several prefixes make one scope: the exporter's renamed collisions (``renamed_variants``).
    """
    prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
    index = GraphIndex(model.graph)
    inside = _scope_nodes(model, index, prefixes)
    members = {id(node) for node in inside}

    def within(node: onnx.NodeProto) -> bool:
        return id(node) in members

    produced = {output for node in inside for output in node.output}
    inputs: list[str] = []
    for node in inside:
        for read in node.input:
            # A quantizer several scopes read stays outside: the scope reads its float input.
            name = float_source(index, read)
            if (
                name
                and read not in produced
                and name not in inputs
                and not _is_constant(index, name)
            ):
                inputs.append(name)
    read_outside = {name for node in model.graph.node if not within(node) for name in node.input}
    read_outside |= {output.name for output in model.graph.output}
    outputs = [name for node in inside for name in node.output if name in read_outside]
    return ScopeBoundary(prefixes[0], len(inside), tuple(inputs), tuple(dict.fromkeys(outputs)))


def scope_nodes(model: onnx.ModelProto, prefix: str | Sequence[str]) -> list[onnx.NodeProto]:
    """The nodes of a scope in graph order: those named under ``prefix``, the ones an optimiser
    fused out of it, and the quantizers only it reads (as ``scope_boundary`` counts them)."""
    prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
    return _scope_nodes(model, GraphIndex(model.graph), prefixes)


def _scope_nodes(
    model: onnx.ModelProto, index: GraphIndex, prefixes: tuple[str, ...]
) -> list[onnx.NodeProto]:
    scoped = [node for node in model.graph.node if node.name.startswith(prefixes)]
    if not scoped:
        raise ParityError(
            f"intermediate: no node of the graph is in scope {prefixes[0]!r}; "
            "list the scopes with `parity compare MODEL --list-scopes`"
        )
    return _quantizers_to_readers(index, _with_fused(model.graph, index, scoped))


# Ops that turn a float value into integers for the next layer's integer kernel.
QUANTIZERS = frozenset({"QuantizeLinear", "DynamicQuantizeLinear"})


def float_source(index: GraphIndex, name: str) -> str:
    """The float value ``name`` quantizes, where a quantizer made it (its codes, scale or zero
    point); ``name`` itself otherwise."""
    producer = index.producer(name)
    if producer is not None and producer.op_type in QUANTIZERS:
        return producer.input[0]
    return name


def _quantizers_to_readers(index: GraphIndex, inside: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``inside`` with each quantizer moved to the scope that reads it. ONNX Runtime's
    quantizer names the node that quantizes a module's output for the next layer's integer op
    after the module (``.../full_layer_layer_norm_11/..._QuantizeLinear`` ends ALBERT in every
    int8 Kokoro), so the module would hand out uint8 codes, a scale and a zero point, and the
    next one would read them: neither is a float a PyTorch module makes or takes. A quantizer
    belongs to its readers: the one only this scope reads joins it, and the one it does not
    read leaves it, so both sides of a boundary are float."""
    members = {id(node) for node in inside}
    read = {name for node in inside for name in node.input}

    def read_here_only(node: onnx.NodeProto) -> bool:
        found = [reader for name in node.output for reader in index.consumers(name)]
        return bool(found) and all(id(reader) in members for reader in found)

    return [
        node
        for node in index.graph.node
        if (
            id(node) in members
            and (node.op_type not in QUANTIZERS or read.intersection(node.output))
        )
        or (id(node) not in members and node.op_type in QUANTIZERS and read_here_only(node))
    ]


def _with_fused(
    graph: onnx.GraphProto, index: GraphIndex, scoped: list[onnx.NodeProto]
) -> list[onnx.NodeProto]:
    """``scoped`` and the nodes an optimiser fused out of it: ONNX Runtime's fusions name their
    nodes without a scope (``SkipLayerNormalization_token_117`` ends ALBERT in the published
    graph), so a node with no scope that reads only the scope's values (and constants) is the
    scope's, and its output is the module's."""
    produced = {output for node in scoped for output in node.output}
    members = {id(node) for node in scoped}
    for node in graph.node:  # topological order: a fused chain joins link by link
        if id(node) in members or node.name.startswith("/"):
            continue
        computed = [name for name in node.input if name and not _is_constant(index, name)]
        if computed and all(name in produced for name in computed):
            members.add(id(node))
            produced.update(node.output)
    return [node for node in graph.node if id(node) in members]


def value_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Element types (and shapes where known) of every value, from ONNX shape inference."""
    inferred = shape_inference.infer_shapes(model, strict_mode=False)
    graph = inferred.graph
    types = {v.name: v.type for v in [*graph.value_info, *graph.input, *graph.output]}
    for tensor in graph.initializer:
        types.setdefault(tensor.name, helper.make_tensor_type_proto(tensor.data_type, tensor.dims))
    return types


def expose(
    model: onnx.ModelProto,
    names: Sequence[str],
    types: dict[str, onnx.TypeProto] | None = None,
) -> onnx.ModelProto:
    """A copy of ``model`` whose graph outputs also include ``names`` (in that order);
    ``types`` is ``value_types(model)`` where the caller has it (inference takes seconds)."""
    known = {output for node in model.graph.node for output in node.output}
    known |= {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer}
    missing = [name for name in names if name not in known]
    if missing:
        raise ParityError(
            f"intermediate: {missing[0]!r} is not a value of the graph ({len(missing)} unknown); "
            "give a node output, a node name or a module scope"
        )
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {output.name for output in exposed.graph.output}
    types = types if types is not None else value_types(model)
    for name in names:
        if name in present:
            continue
        value_type = types.get(name)
        info = onnx.ValueInfoProto()
        info.name = name
        # A value ONNX's inference could not type goes out untyped, and ONNX Runtime types it
        # when it resolves the graph (a guessed float would clash with an int or a sequence).
        if value_type is not None:
            info.type.CopyFrom(value_type)
        exposed.graph.output.append(info)
        present.add(name)
    return exposed


def module_scopes(model: object, run: Callable[[], object]) -> dict[str, str]:
    """Map each module path called during ``run()`` to the ONNX scope prefix of its nodes.

    The TorchScript exporter names a module's scope ``unqualified_name(path)`` under the scope
    of the module whose forward called it, and does not make scopes unique: two modules may
    share one (KModel calls ``predictor.text_encoder`` and ``text_encoder`` directly, so both
    are ``/text_encoder/``), and it renames colliding node names instead (``/text_encoder_1/``).
    """
    paths = {id(module): name for name, module in model.named_modules()}  # type: ignore[attr-defined]
    stack: list[str] = ["/"]
    scopes: dict[str, str] = {}
    handles = []

    def pre_hook(module: object, _inputs: object) -> None:
        path = paths[id(module)]
        scope = f"{stack[-1]}{unqualified_name(path)}/"
        scopes.setdefault(path, scope)
        stack.append(scope)

    def post_hook(_module: object, _inputs: object, _output: object) -> None:
        stack.pop()

    for name, module in model.named_modules():  # type: ignore[attr-defined]
        if name:
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook))
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return scopes


def renamed_variants(model: onnx.ModelProto, prefix: str) -> list[str]:
    """``prefix`` and the variants the exporter made by renaming colliding node names
    (``/text_encoder/Transpose`` also as ``/text_encoder_1/Transpose``)."""
    pattern = variant_pattern(prefix)
    found = [known for known in sorted(onnx_scope_prefixes(model)) if pattern.match(known)]
    return [prefix, *(known for known in found if known != prefix)]


@dataclass
class CapturedCall:
    """A module's first call: its tensor arguments and its output(s), as numpy arrays."""

    inputs: list[np.ndarray]
    outputs: list[np.ndarray]


def _tensors(value: object) -> list[np.ndarray]:
    import torch

    if isinstance(value, torch.Tensor):
        # A copy: Kokoro adds into some outputs in place (``xs += resblock(x, s)``).
        return [value.detach().cpu().numpy().copy()]
    if isinstance(value, (tuple, list)):
        return [array for item in value for array in _tensors(item)]
    return []


@contextlib.contextmanager
def capture(model: object, paths: Sequence[str]) -> Iterator[dict[str, CapturedCall]]:
    """Record the first call of each module in ``paths`` (inputs and outputs as numpy)."""
    modules = dict(model.named_modules())  # type: ignore[attr-defined]
    unknown = [path for path in paths if path not in modules]
    if unknown:
        raise ParityError(f"intermediate: {unknown[0]!r} is not a module of the PyTorch model")
    captured: dict[str, CapturedCall] = {}
    handles = []
    for path in paths:

        def hook(_module: object, inputs: object, output: object, path: str = path) -> None:
            if path not in captured:
                captured[path] = CapturedCall(_tensors(inputs), _tensors(output))

        handles.append(modules[path].register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
