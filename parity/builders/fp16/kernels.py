"""Which op types ONNX Runtime's CPU provider cannot run in the target type, found by loading
each alone; those nodes are kept float32 rather than left to fail at session load."""

from __future__ import annotations

import onnx
from onnx import helper

from parity.builders.fp16.schema import (
    CONTROL_FLOW,
    DTYPE_ATTRIBUTE,
    FLOAT,
    elem_types,
    set_int_attribute,
)
from parity.builders.fp16.settings import LOW_TYPES, LowType
from parity.core.graph import node_subgraphs

__all__ = ["unsupported_on_cpu"]


def unsupported_on_cpu(model: onnx.ModelProto, target: LowType) -> set[str]:
    """Op types of ``model`` that ONNX Runtime's CPU provider has no ``target`` kernel for.

    Each op is tried alone, in a one-node model with its real attributes and its float
    inputs in ``target``; a session that cannot find a kernel names the op. float16 needs
    no probe: ONNX Runtime runs float16 nodes without a CPU kernel in float32, with Casts.
    """
    if target == "float16":
        return set()
    import onnxruntime as ort

    types = elem_types(model)
    low = LOW_TYPES[target]
    opset = list(model.opset_import)
    tried: dict[tuple[str, str], bool] = {}
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            graphs.extend(node_subgraphs(node))
            key = (node.domain, node.op_type)
            if key in tried or node.op_type in CONTROL_FLOW or node.op_type == "Constant":
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
    if node.op_type in DTYPE_ATTRIBUTE:
        set_int_attribute(copy, DTYPE_ATTRIBUTE[node.op_type], low)
    graph = helper.make_graph([copy], "probe", inputs, outputs)
    model = helper.make_model(graph, opset_imports=opset)
    model.ir_version = 9
    return model
