"""Small helpers over an ONNX graph: who produces and consumes a value, initializers, pruning."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from parity.core.errors import ParityError, first_line

__all__ = ["GraphIndex", "UniqueNames", "load_model", "node_subgraphs", "prune_dead"]


class GraphIndex:
    """Producer, consumers and initializer arrays of one (sub)graph, built once."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.producers: dict[str, onnx.NodeProto] = {}
        self.consumer_map: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for output in node.output:
                self.producers[output] = node
            for name in node.input:
                self.consumer_map.setdefault(name, []).append(node)
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}

    def producer(self, name: str) -> onnx.NodeProto | None:
        return self.producers.get(name)

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return self.consumer_map.get(name, [])

    def array(self, name: str) -> np.ndarray | None:
        """The initializer's value, or a ``Constant`` node's, or None for a computed value."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producers.get(name)
        if node is not None and node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    return numpy_helper.to_array(attribute.t)
        return None

    def only_consumer(self, name: str, op_type: str) -> onnx.NodeProto | None:
        """The single consumer of ``name`` if it is an ``op_type`` node, else None."""
        consumers = self.consumers(name)
        if len(consumers) == 1 and consumers[0].op_type == op_type:
            return consumers[0]
        return None


class UniqueNames:
    """Fresh value and node names that collide with nothing already in the model."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.taken: set[str] = set()
        graphs = [model.graph]
        while graphs:
            graph = graphs.pop()
            self.taken.update(t.name for t in graph.initializer)
            self.taken.update(v.name for v in [*graph.input, *graph.output, *graph.value_info])
            for node in graph.node:
                self.taken.add(node.name)
                self.taken.update(node.input)
                self.taken.update(node.output)
                graphs.extend(node_subgraphs(node))

    def __call__(self, base: str) -> str:
        name, counter = base, 0
        while name in self.taken:
            counter += 1
            name = f"{base}_{counter}"
        self.taken.add(name)
        return name


def _subgraphs(attribute: onnx.AttributeProto) -> Iterable[onnx.GraphProto]:
    if attribute.type == onnx.AttributeProto.GRAPH:
        yield attribute.g
    elif attribute.type == onnx.AttributeProto.GRAPHS:
        yield from attribute.graphs


def node_subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The bodies a node holds (If branches, Loop and Scan bodies), in attribute order."""
    for attribute in node.attribute:
        yield from _subgraphs(attribute)


def _subgraph_reads(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs read from enclosing scopes (If/Loop/Scan bodies)."""
    reads: set[str] = set()
    for graph in node_subgraphs(node):
        local = {t.name for t in graph.initializer} | {i.name for i in graph.input}
        for inner in graph.node:
            local.update(inner.output)
        for inner in graph.node:
            reads.update(name for name in inner.input if name and name not in local)
            reads.update(_subgraph_reads(inner))
    return reads


def prune_dead(graph: onnx.GraphProto) -> int:
    """Drop nodes whose outputs nothing reads, and unread initializers; returns nodes dropped."""
    needed = {output.name for output in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(output in needed for output in node.output if output):
            kept.append(node)
            needed.update(name for name in node.input if name)
            needed.update(_subgraph_reads(node))
    dropped = len(graph.node) - len(kept)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    unread = [tensor for tensor in graph.initializer if tensor.name not in needed]
    for tensor in unread:
        graph.initializer.remove(tensor)
    return dropped


def load_model(path: str | os.PathLike[str], *, external_data: bool = True) -> onnx.ModelProto:
    """``onnx.load`` with one clear error line for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ParityError(f"{path}: no such ONNX file; export one with `parity export -o {path}`")
    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception as error:  # protobuf DecodeError, OSError for missing external data, ...
        raise ParityError(
            f"{path}: not a readable ONNX model ({type(error).__name__}: "
            f"{first_line(error, 160)}); "
            "if it is truncated or corrupt, export it again"
        ) from error
