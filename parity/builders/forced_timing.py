"""Timing as a graph input: a Kokoro graph that takes its per-token durations from outside.

Kokoro rounds each token's predicted duration to whole frames. A variant that moves one
rounding shifts every later frame, and a frame-by-frame comparison then measures the shift,
not the sound. Rewired with :func:`force_timing`, a graph runs on the durations its float32
source predicted (so both waveforms have the same frames) and still reports the durations it
would have chosen itself, which the timing axis of the verdict judges separately.

The durations are the ``Cast`` to int64 of ``Clip(Round(...))``: what kokoro's
``torch.round(duration).clamp(min=1).long()`` exports to. Our exports, the published
kokoro-onnx graph and every variant ONNX Runtime's quantizer makes of them keep that chain; a
float16 conversion may put a float ``Cast`` between the ``Round`` and the ``Clip``.
"""

from __future__ import annotations

from typing import NamedTuple

import onnx
from onnx import TensorProto, helper

from parity.core.errors import ParityError
from parity.core.graph import GraphIndex
from parity.core.interface import FORCED_INPUT, PREDICTED_OUTPUT

__all__ = [
    "FORCED_INPUT",
    "PREDICTED_OUTPUT",
    "DurationChain",
    "NoDurationChainError",
    "duration_chain",
    "duration_tensor",
    "force_timing",
]


class NoDurationChainError(ParityError):
    """The graph has no duration chain to rewire: its timing cannot be forced."""


class DurationChain(NamedTuple):
    """A Kokoro graph's ``Cast(Clip(Round(x)))``: its float input and its int64 output."""

    unrounded: str  # per-token durations before the Round (frames, as a float)
    durations: str  # the int64 per-token frame counts


def duration_tensor(graph: onnx.GraphProto) -> str | None:
    """The int64 per-token frame counts of a Kokoro graph, or None if it has no such chain."""
    chain = duration_chain(graph)
    return chain.durations if chain else None


def duration_chain(graph: onnx.GraphProto) -> DurationChain | None:
    """The graph's duration chain (one walk finds both ends), or None if it has none."""
    index = GraphIndex(graph)
    for node in graph.node:
        if node.op_type != "Round":
            continue
        rounded = node.output[0]
        # A float16 conversion that keeps the Round float32 puts a Cast to float16 after it.
        while (between := index.only_consumer(rounded, "Cast")) and _cast_to(between) in FLOATS:
            rounded = between.output[0]
        clip = index.only_consumer(rounded, "Clip") or index.only_consumer(rounded, "Max")
        cast = clip and index.only_consumer(clip.output[0], "Cast")
        if cast and _cast_to(cast) == TensorProto.INT64:
            return DurationChain(node.input[0], cast.output[0])
    return None


FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)


def _cast_to(cast: onnx.NodeProto) -> int | None:
    return next((a.i for a in cast.attribute if a.name == "to"), None)


def force_timing(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose durations come from the input ``forced_durations`` and that
    also outputs the ones it predicted (``predicted_durations``)."""
    forced = onnx.ModelProto()
    forced.CopyFrom(model)
    graph = forced.graph
    if any(value.name == FORCED_INPUT for value in graph.input):
        return forced
    name = duration_tensor(graph)
    if name is None:
        raise NoDurationChainError(
            f"timing: the graph {graph.name!r} has no Round -> Clip -> Cast(int64) duration "
            "chain to force; judge it with timing aligned (DTW) instead"
        )
    for node in graph.node:
        node.input[:] = [FORCED_INPUT if value == name else value for value in node.input]
    for output in graph.output:
        if output.name == name:  # an export that returns this very tensor keeps doing so
            output.name = FORCED_INPUT
    graph.input.append(helper.make_tensor_value_info(FORCED_INPUT, TensorProto.INT64, [1, "L"]))
    graph.node.append(helper.make_node("Identity", [name], [PREDICTED_OUTPUT], "parity_timing"))
    graph.output.append(
        helper.make_tensor_value_info(PREDICTED_OUTPUT, TensorProto.INT64, [1, "L"])
    )
    return forced
