"""What the model and ONNX's op schemas say about types: every value's element type, and
which of a node's inputs must share its outputs' type, accept any, or are float32 only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from parity.core.errors import ParityError, first_line
from parity.core.graph import node_subgraphs

__all__ = [
    "CONTROL_FLOW",
    "DTYPE_ATTRIBUTE",
    "FLOAT",
    "Roles",
    "all_nodes",
    "declared_types",
    "elem_types",
    "known_schema",
    "roles",
    "set_int_attribute",
]

FLOAT = TensorProto.FLOAT
_SCHEMA_NAMES: dict[int, str] = {
    TensorProto.FLOAT16: "tensor(float16)",
    TensorProto.BFLOAT16: "tensor(bfloat16)",
}
CONTROL_FLOW = {"If", "Loop", "Scan"}
# Ops whose float output type is set by an attribute rather than by an input's type.
DTYPE_ATTRIBUTE = {
    "Cast": "to",
    "EyeLike": "dtype",
    "RandomNormal": "dtype",
    "RandomUniform": "dtype",
    "RandomNormalLike": "dtype",
    "RandomUniformLike": "dtype",
    "Bernoulli": "dtype",
}


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
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
    return declared_types(typed)


def declared_types(model: onnx.ModelProto) -> dict[str, int]:
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


def all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of the subgraphs its nodes hold, outer before inner."""
    for node in graph.node:
        yield node
        for sub in node_subgraphs(node):
            yield from all_nodes(sub)


_Formal = onnx.defs.OpSchema.FormalParameter


@dataclass(frozen=True)
class Roles:
    """How a node's float inputs read (follow the node, any precision, float32 only)."""

    inputs: tuple[str, ...]  # per input: "node", "any" or "fp32"
    inputs_low_ok: tuple[bool, ...]  # per input: its schema type admits the low type
    outputs_low_ok: tuple[bool, ...]


# For every place a tensor is read, the reader's precision comes from the op schema: a type
# shared with the node's outputs follows the node, a type only that input has (``Shape``,
# ``Cast``) accepts either, a fixed ``tensor(float)`` (``Resize`` scales) stays float32.
def roles(node: onnx.NodeProto, opset: dict[str, int], low: int) -> Roles:
    """Read the op schema: which inputs share the outputs' type, which accept anything."""
    n_in, n_out = len(node.input), len(node.output)
    if node.op_type in CONTROL_FLOW:
        return Roles(("node",) * n_in, (True,) * n_in, (True,) * n_out)
    domain = node.domain if node.domain not in ("", "ai.onnx") else ""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset.get(domain, 1), domain)
    except onnx.defs.SchemaError:
        return Roles(("fp32",) * n_in, (False,) * n_in, (False,) * n_out)
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
    return Roles(tuple(inputs), tuple(inputs_low_ok), tuple(outputs))


def known_schema(node: onnx.NodeProto) -> bool:
    """ONNX has a schema for the node's op (control flow counts as known)."""
    if node.op_type in CONTROL_FLOW:
        return True
    domain = node.domain if node.domain not in ("", "ai.onnx") else ""
    return onnx.defs.has(node.op_type, domain)


def set_int_attribute(node: onnx.NodeProto, name: str, value: int) -> None:
    """Set a dtype attribute to ``value`` where it says float32 (or add it when absent)."""
    for attribute in node.attribute:
        if attribute.name == name:
            if attribute.i == FLOAT:
                attribute.i = value
            return
    node.attribute.append(helper.make_attribute(name, value))
