"""Instance normalisation written out by the exporter, folded back into one
``InstanceNormalization`` node.

torch.onnx writes ``nn.InstanceNorm1d`` (Kokoro's AdaIN; 64 of the trained model's fold) as
seven nodes: ReduceMean, Sub, Mul, ReduceMean, Add(eps), Sqrt, Div. ONNX Runtime runs them as
seven passes over a [1, C, T] tensor; its ``InstanceNormalization`` kernel makes one. Measured
on [1, 128, 80000] (ORT 1.32, median of 7, 2026-12-05): 20.9 ms against 7.9 ms on one thread,
9.5 against 7.3 on two; outputs equal to 7e-7. In the int8 recipe with integer resblock convs
the seven-node form was the largest op type left (ReduceMean 29% of a one-thread run).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from parity.core.graph import prune_dead

__all__ = ["fuse_instance_norms"]


def fuse_instance_norms(model: onnx.ModelProto, scopes: Sequence[str] = ("",)) -> int:
    """Replace each written-out instance norm under ``scopes`` (in place); returns how many.

    The pattern is matched on the graph, not on names: ``Div(d, Sqrt(Add(ReduceMean(d*d), e)))``
    with ``d = Sub(x, ReduceMean(x))``, both means over the last axis of a rank-3 tensor
    (kept), and ``e`` a constant. Its scale and bias (ones and zeros of x's channel count)
    are made from x's shape at run time, so the pattern needs no shape inference.
    """
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    replacements: dict[int, list[onnx.NodeProto]] = {}
    for node in graph.node:
        if node.op_type != "Div" or not node.name.startswith(tuple(scopes)):
            continue
        match = _match(node, producer, constants, readers)
        if match is None:
            continue
        source, epsilon = match
        replacements[id(node)] = _instance_norm(node, source, epsilon)
    if not replacements:
        return 0
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        nodes.extend(replacements.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(nodes)
    prune_dead(graph)  # the replaced patterns' other six nodes
    return len(replacements)


def _match(
    div: onnx.NodeProto,
    producer: dict[str, onnx.NodeProto],
    constants: dict[str, np.ndarray],
    readers: dict[str, int],
) -> tuple[str, float] | None:
    """(x, epsilon) when ``div`` ends a written-out instance norm, else None."""

    def made_by(name: str | None, op_type: str) -> onnx.NodeProto | None:
        node = producer.get(name or "")
        return node if node is not None and node.op_type == op_type else None

    centred, root = div.input
    sqrt = made_by(root, "Sqrt")
    add = made_by(sqrt.input[0], "Add") if sqrt else None
    summed = list(add.input) if add else []
    eps_names = [n for n in summed if n in constants and constants[n].size == 1]
    variance = next((n for n in summed if n not in eps_names), None) if eps_names else None
    mean_sq = made_by(variance, "ReduceMean")
    square = made_by(mean_sq.input[0], "Mul") if mean_sq else None
    sub = made_by(centred, "Sub")
    mean = made_by(sub.input[1], "ReduceMean") if sub else None
    found = (
        mean_sq is not None
        and square is not None
        and sub is not None
        and mean is not None
        and list(square.input) == [centred, centred]
        and mean.input[0] == sub.input[0]
        and _over_last_axis(mean, constants)
        and _over_last_axis(mean_sq, constants)
        # d is read by the square (twice) and the division only, so nothing else needs it.
        and readers.get(centred, 0) == 3
    )
    if not found:
        return None
    assert sub is not None
    return sub.input[0], float(constants[eps_names[0]].reshape(()))


def _over_last_axis(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> bool:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("keepdims", 1) != 1:
        return False
    if len(node.input) > 1 and node.input[1] in constants:
        axes = [int(a) for a in constants[node.input[1]].reshape(-1)]
    else:
        axes = [int(a) for a in attrs.get("axes", [])]
    return axes in ([2], [-1])


def _instance_norm(div: onnx.NodeProto, source: str, epsilon: float) -> list[onnx.NodeProto]:
    name = f"{div.name}/instance_norm"
    one = helper.make_tensor("one", onnx.TensorProto.FLOAT, [1], [1.0])
    zero = helper.make_tensor("zero", onnx.TensorProto.FLOAT, [1], [0.0])
    return [
        helper.make_node("Shape", [source], [f"{name}/c"], name=f"{name}/c", start=1, end=2),
        helper.make_node(
            "ConstantOfShape", [f"{name}/c"], [f"{name}/ones"], name=f"{name}/ones", value=one
        ),
        helper.make_node(
            "ConstantOfShape", [f"{name}/c"], [f"{name}/zeros"], name=f"{name}/zeros", value=zero
        ),
        helper.make_node(
            "InstanceNormalization",
            [source, f"{name}/ones", f"{name}/zeros"],
            [div.output[0]],
            name=name,
            epsilon=epsilon,
        ),
    ]
