"""Per-layer sensitivity: which nodes break the audio when quantized or cast, and what to keep.

A sweep applies the transform to one group of weight-bearing nodes at a time and measures
the loss of the result against the untransformed model on a fixed set of requests. Groups
are module scopes (``/decoder/decoder/generator/resblocks.2/``); a group that hurts is split
into its sub-scopes, and so on down to single nodes, so the sweep spends its builds where
the damage is. Every group over the threshold is excluded; the rest are transformed at
once and that combined model is measured. When layers that are harmless alone add up past
the budget, a binary search over the remaining groups (worst first) finds how many more
must go.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnx

from parity.cache import write_text_atomic
from parity.errors import ParityError
from parity.graph import load_model
from parity.inputs import KokoroInput
from parity.metrics import log_mel_distance
from parity.reporting import to_jsonable

__all__ = ["SweepResult", "SweepRow", "Transform", "sweep"]

Transform = Literal["int8-dynamic", "int8-qdq", "fp16"]
TRANSFORMS: tuple[Transform, ...] = ("int8-dynamic", "int8-qdq", "fp16")
WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
# A waveform-level loss: (reference, candidate) -> number, larger is worse.
Loss = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class SweepRow:
    """One group transformed alone: its scope, nodes and the loss it caused."""

    scope: str
    nodes: tuple[str, ...] = field(repr=False)
    op_types: str
    loss: float


@dataclass(frozen=True)
class SweepResult:
    """The ranking, the decision it led to, and the combined model's measured loss."""

    transform: str
    rows: tuple[SweepRow, ...]  # worst first
    threshold: float
    budget: float
    excluded: tuple[str, ...]  # groups over the threshold
    extra_excluded: tuple[str, ...]  # groups the bisection had to add
    combined_loss: float
    builds: int
    seconds: float

    def __bool__(self) -> bool:
        return bool(np.isfinite(self.combined_loss)) and self.combined_loss <= self.budget

    def excluded_nodes(self) -> list[str]:
        keep = {*self.excluded, *self.extra_excluded}
        return sorted(node for row in self.rows if row.scope in keep for node in row.nodes)

    def summary(self) -> str:
        return (
            f"{self.transform}: {len(self.rows)} groups in {self.builds} builds "
            f"({self.seconds:.0f}s); {len(self.excluded)} over {self.threshold:g} excluded, "
            f"{len(self.extra_excluded)} more by bisection; combined loss "
            f"{self.combined_loss:.3f} (budget {self.budget:g})"
        )

    def write(self, folder: Path) -> None:
        """``sensitivity.json`` (everything) and ``sensitivity.csv`` (one row per group)."""
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "sensitivity.json", json.dumps(to_jsonable(self), indent=2))
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["scope", "op_types", "nodes", "loss", "excluded"])
        kept_out = {*self.excluded, *self.extra_excluded}
        for row in self.rows:
            writer.writerow(
                [row.scope, row.op_types, len(row.nodes), f"{row.loss:.6g}", row.scope in kept_out]
            )
        write_text_atomic(folder / "sensitivity.csv", table.getvalue())


def mean_log_mel(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Log-mel distance (``parity.metrics.MEL`` settings) over the frames both have."""
    return log_mel_distance(reference, candidate)


def weight_nodes(model: onnx.ModelProto, transform: Transform) -> list[onnx.NodeProto]:
    """Nodes whose second input is a stored weight and that ``transform`` can change."""
    from parity.quantize import QuantRecipe

    ops = WEIGHT_OPS if transform == "fp16" else QuantRecipe().op_types
    stored = {tensor.name for tensor in model.graph.initializer}
    return [
        node
        for node in model.graph.node
        if node.op_type in ops and len(node.input) > 1 and node.input[1] in stored
    ]


def scope_of(name: str, depth: int) -> str:
    """The first ``depth`` scope components of a node name, as a prefix ending in '/'."""
    parts = [part for part in name.split("/") if part][:-1]  # the last part is the op
    return "/" + "/".join(parts[:depth]) + "/" if parts else name


def _groups(nodes: Sequence[onnx.NodeProto], depth: int) -> dict[str, list[onnx.NodeProto]]:
    grouped: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        grouped.setdefault(scope_of(node.name, depth), []).append(node)
    return grouped


class _Bench:
    """Builds transformed copies of one model and measures them on fixed requests."""

    def __init__(  # noqa: PLR0917 - private, called once
        self,
        source: Path,
        transform: Transform,
        requests: Sequence[KokoroInput],
        calibration: Sequence[KokoroInput],
        loss: Loss,
        scratch: Path,
    ) -> None:
        from parity.runners import OrtRunner

        self.source, self.transform, self.requests = source, transform, list(requests)
        self.calibration, self.loss, self.scratch = list(calibration), loss, scratch
        self.reference = [OrtRunner(source).infer(r).waveform for r in self.requests]
        self.builds = 0

    def measure(self, transformed: set[str], all_nodes: set[str]) -> float:
        """Loss when exactly the ``transformed`` nodes get the transform."""
        from parity.runners import OrtRunner

        target = self.scratch / f"candidate-{self.builds}.onnx"
        self.builds += 1
        keep = sorted(all_nodes - transformed)
        if self.transform == "fp16":
            from parity.fp16 import Fp16Options, convert_file

            convert_file(self.source, target, Fp16Options(block_nodes=frozenset(keep)))
        else:
            from parity.quantize import QuantRecipe, quantize_model

            recipe = QuantRecipe(
                mode="dynamic" if self.transform == "int8-dynamic" else "qdq",
                exclude_nodes=tuple(keep),
                exclude_scopes=(),
                preprocess=False,
            )
            quantize_model(self.source, target, recipe, self.calibration)
        runner = OrtRunner(target)
        losses = [
            self.loss(reference, runner.infer(request).waveform)
            for reference, request in zip(self.reference, self.requests, strict=True)
        ]
        target.unlink()
        return float(np.mean(losses))


def sweep(
    source: Path,
    transform: Transform,
    requests: Sequence[KokoroInput],
    *,
    threshold: float,
    budget: float,
    calibration: Sequence[KokoroInput] = (),
    depth: int = 2,
    max_depth: int = 6,
    loss: Loss = mean_log_mel,
) -> SweepResult:
    """Rank the groups of weight nodes of ``source`` by the loss ``transform`` causes.

    ``source`` should already be optimised (weights as initializers; see
    ``parity.quantize``'s pre-processing). Groups over ``threshold`` are split down to
    ``max_depth`` scope levels and then excluded; the combined model must stay within
    ``budget``.
    """
    if transform not in TRANSFORMS:
        raise ParityError(f"sensitivity: unknown transform {transform!r}; use {TRANSFORMS}")
    if not requests:
        raise ParityError("sensitivity: no requests to measure the loss on")
    start = time.perf_counter()
    model = load_model(source, external_data=False)
    nodes = weight_nodes(model, transform)
    if not nodes:
        raise ParityError(f"sensitivity: {source} has no weight-bearing nodes to transform")
    every = {node.name for node in nodes}
    with tempfile.TemporaryDirectory() as scratch:
        bench = _Bench(Path(source), transform, requests, calibration, loss, Path(scratch))
        rows = _rank(bench, every, _groups(nodes, depth), depth, max_depth, threshold)
        rows.sort(key=lambda row: row.loss, reverse=True)
        excluded = [row for row in rows if not row.loss <= threshold]
        remaining = [row for row in rows if row.loss <= threshold]

        def combined(extra: int) -> float:
            out = {n for row in [*excluded, *remaining[:extra]] for n in row.nodes}
            return bench.measure(every - out, every)

        extra, combined_loss = _bisect(combined, len(remaining), budget)
    return SweepResult(
        transform,
        tuple(rows),
        threshold,
        budget,
        tuple(row.scope for row in excluded),
        tuple(row.scope for row in remaining[:extra]),
        combined_loss,
        bench.builds,
        time.perf_counter() - start,
    )


def _rank(  # noqa: PLR0917 - private recursion
    bench: _Bench,
    every: set[str],
    groups: dict[str, list[onnx.NodeProto]],
    depth: int,
    max_depth: int,
    threshold: float,
) -> list[SweepRow]:
    """Measure each group alone; split the ones over ``threshold`` into sub-scopes."""
    rows: list[SweepRow] = []
    for scope, members in sorted(groups.items()):
        names = {node.name for node in members}
        value = bench.measure(names, every)
        children = _groups(members, depth + 1)
        hurts = not value <= threshold  # NaN (an overflow) hurts too
        if hurts and len(members) > 1 and depth < max_depth and len(children) > 1:
            rows.extend(_rank(bench, every, children, depth + 1, max_depth, threshold))
            continue
        op_types = ",".join(sorted({node.op_type for node in members}))
        rows.append(SweepRow(scope, tuple(sorted(names)), op_types, value))
    return rows


def _bisect(combined: Callable[[int], float], count: int, budget: float) -> tuple[int, float]:
    """Fewest extra groups (worst first) to exclude so the combined loss is within budget.

    Assumes excluding more never hurts; returns (extra, its measured loss). Every step is a
    full run of the combined model, so the answer is verified, not inferred.
    """
    first = combined(0)
    if first <= budget:
        return 0, first
    low, high, best = 1, count, (count, float("nan"))
    while low <= high:
        middle = (low + high) // 2
        value = combined(middle)
        if value <= budget:
            best, high = (middle, value), middle - 1
        else:
            low = middle + 1
    if not np.isfinite(best[1]):
        return count, combined(count)
    return best
