"""Casts where a tensor's available precision differs from what a reader wants, once per
tensor and precision, in every scope (``If``/``Loop``/``Scan`` bodies read outer tensors)."""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from onnx import helper

from parity.builders.fp16.constants import LowConstants
from parity.builders.fp16.precision import PrecisionPlan, Scope
from parity.builders.fp16.schema import FLOAT
from parity.builders.fp16.settings import SUFFIX
from parity.core.graph import UniqueNames

__all__ = ["CastPlacer"]


class CastPlacer:
    """Gives every read of a float tensor the precision its reader wants.

    Constants wanted only in the low type are converted in place; otherwise a value is made
    once per wanted precision (a converted copy of a constant, or a Cast) and its readers
    renamed to it. New nodes are queued on their scope and placed by ``place_insertions``.
    """

    def __init__(self, plan: PrecisionPlan, names: UniqueNames, constants: LowConstants) -> None:
        self.plan = plan
        self.names = names
        self.constants = constants
        self.converted: dict[tuple[str, int], str] = {}
        self.casts = 0

    def place(self) -> None:
        """Rename low-precision graph outputs, convert constants, then point reads at Casts."""
        plan = self.plan
        self.rename_low_outputs()
        reads = list(self.reads())
        wants: dict[str, set[int]] = {}
        for _, _, name, wanted in reads:
            wants.setdefault(name, set()).add(wanted)
        for name, wanted_set in wants.items():
            source = plan.sources.get(name)
            if source is not None and source.constant and wanted_set == {plan.low}:
                self.constants.convert_in_place(name, source)
                plan.available[name] = plan.low
        for holder, index, name, wanted in reads:
            if plan.available[name] == wanted:
                continue
            replacement = self.in_precision(name, wanted)
            if isinstance(holder, onnx.NodeProto):
                holder.input[index] = replacement
            else:
                holder.output[index].name = replacement  # type: ignore[attr-defined]

    def reads(self) -> Iterator[tuple[object, int, str, int]]:
        """(holder, index, value, wanted) for every read of a float32 value that has a want.

        ``holder`` is a node (its input ``index``) or a graph (its output ``index``); inputs
        that take any precision (``Shape``, ``Cast``) are not reads in this sense.
        """
        plan = self.plan
        for scope in plan.scopes:
            for node in scope.graph.node:
                if node.op_type == "Constant":
                    continue
                roles, precision = plan.roles[id(node)], plan.precision[id(node)]
                for index, name in enumerate(node.input):
                    if not plan.is_float(name):
                        continue
                    role = roles.inputs[index] if index < len(roles.inputs) else "node"
                    if role != "any":
                        yield node, index, name, precision if role == "node" else FLOAT
            interface = plan.interface_precision(scope)
            for index, value in enumerate(scope.graph.output):
                if plan.is_float(value.name):
                    yield scope.graph, index, value.name, interface

    def rename_low_outputs(self) -> None:
        """A main-graph output kept float32 but computed in low precision: Cast to its name."""
        plan = self.plan
        if not plan.options.keep_io_types:
            return
        main = plan.scopes[0]
        for value in main.graph.output:
            name = value.name
            if not plan.is_float(name) or plan.available[name] != plan.low:
                continue
            source = plan.sources[name]
            if source.node is None:
                continue
            inner = self.names(f"{name}_{SUFFIX[plan.low]}")
            self.rename_everywhere(name, inner)
            plan.types[inner] = FLOAT
            plan.available[inner] = plan.low
            plan.sources[inner] = source
            cast = self.cast_node(inner, name, FLOAT)
            plan.available[name] = FLOAT
            main.insertions.setdefault(id(source.node), []).append(cast)

    def rename_everywhere(self, old: str, new: str) -> None:
        for scope in self.plan.scopes:
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
        plan = self.plan
        key = (name, wanted)
        if key in self.converted:
            return self.converted[key]
        source = plan.sources[name]
        new_name = self.names(f"{name}_{SUFFIX[wanted]}")
        if source.constant and wanted != plan.low:
            raise AssertionError(f"constant {name} is float32 already")
        if source.constant:
            self.constants.add_low_copy(source, new_name)
        else:
            cast = self.cast_node(name, new_name, wanted)
            if source.node is None:
                source.scope.prologue.append(cast)
            else:
                source.scope.insertions.setdefault(id(source.node), []).append(cast)
        self.converted[key] = new_name
        plan.types[new_name] = FLOAT
        plan.available[new_name] = wanted
        return new_name

    def place_insertions(self, scope: Scope) -> None:
        """Rebuild the scope's node list with its prologue first and each queued node after
        the node it follows."""
        nodes: list[onnx.NodeProto] = list(scope.prologue)
        for node in scope.graph.node:
            nodes.append(node)
            nodes.extend(scope.insertions.get(id(node), []))
        del scope.graph.node[:]
        scope.graph.node.extend(nodes)

    def retype_interface(self, scope: Scope) -> None:
        """Inputs and outputs carry the precision they now have; inner value_info is dropped."""
        del scope.graph.value_info[:]
        for value in [*scope.graph.input, *scope.graph.output]:
            if value.name in self.plan.available and value.type.HasField("tensor_type"):
                value.type.tensor_type.elem_type = self.plan.available[value.name]
