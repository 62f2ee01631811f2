"""The sweep: rank groups (splitting those that hurt), exclude, combine, and bisect when
harmless groups add up past the budget."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from parity.core.errors import ParityError
from parity.core.graph import load_model
from parity.core.inputs import InputSet, KokoroInput
from parity.judge.tolerances import DYNAMIC_UINT8

if TYPE_CHECKING:
    from parity.builders.voices import TrainedVoices
    from parity.core.memo import RunStore

from parity.search.sensitivity.candidates import (
    CandidateBench,
    group_by_scope,
    mean_log_mel,
    weight_nodes,
)
from parity.search.sensitivity.result import (
    TRANSFORMS,
    Loss,
    SweepResult,
    SweepRow,
    Transform,
    check_group,
)


class Sweeper:
    """One model, transform and request set: measures groups of nodes, then decides.

    A sweep is ``decide`` over ``rank`` of every first-level group. The groups are
    independent, so pytest-xdist workers can each rank some of them and one process decide
    (``parity.search.sweep_items``); the result is the same table.
    """

    def __init__(
        self,
        source: Path,
        transform: Transform,
        requests: Sequence[KokoroInput],
        *,
        calibration: Sequence[KokoroInput] = (),
        depth: int = 2,
        max_depth: int = 6,
        loss: Loss = mean_log_mel,
        max_moved_tokens: float = float("inf"),
        runs: RunStore | None = None,
    ) -> None:
        if transform not in TRANSFORMS:
            raise ParityError(f"sensitivity: unknown transform {transform!r}; use {TRANSFORMS}")
        if not requests:
            raise ParityError("sensitivity: no requests to measure the loss on")
        nodes = weight_nodes(load_model(source, external_data=False), transform)
        if not nodes:
            raise ParityError(f"sensitivity: {source} has no weight-bearing nodes to transform")
        self.transform, self.depth, self.max_depth = transform, depth, max_depth
        self.every = {node.name for node in nodes}
        self.groups = group_by_scope(nodes, depth)
        self._scratch = tempfile.TemporaryDirectory(prefix="parity-sweep-")
        self.bench = CandidateBench(
            Path(source),
            transform,
            requests,
            calibration,
            loss,
            Path(self._scratch.name),
            max_moved_tokens,
            runs,
        )
        self.bench.pipeline_floor = self.bench.measure(set(), self.every)[0]

    def rank(self, scope: str, threshold: float) -> list[SweepRow]:
        """The rows of one first-level group: itself, or its sub-scopes where it hurts. Both
        front ends (``sweep`` and each ``sweep_items`` item) stop here, in one line, when the
        rows do not account for every node of the group exactly once."""
        self.bench.require_above_floor(threshold, "threshold")
        group = {scope: self.groups[scope]}
        rows = _rank(self.bench, self.every, group, self.depth, self.max_depth, threshold)
        check = check_group(scope, (node.name for node in self.groups[scope]), rows)
        if not check:
            raise ParityError(check.message())
        return rows

    def decide(
        self, rows: Sequence[SweepRow], *, threshold: float, budget: float, builds: int = 0
    ) -> SweepResult:
        """Exclude the rows over ``threshold``, measure the rest combined, bisect if over
        ``budget``. ``builds`` counts those made elsewhere (by other workers)."""
        self.bench.require_above_floor(threshold, "threshold")
        self.bench.require_above_floor(budget, "budget")
        start = time.perf_counter()
        ranked = sorted(rows, key=lambda row: row.loss, reverse=True)
        moved = self.bench.max_moved_tokens
        excluded = [row for row in ranked if row.hurts(threshold, moved)]
        remaining = [row for row in ranked if not row.hurts(threshold, moved)]

        def combined(extra: int) -> float:
            out = {n for row in [*excluded, *remaining[:extra]] for n in row.nodes}
            return self.bench.measure(self.every - out, self.every)[0]

        extra, combined_loss = _bisect(combined, len(remaining), budget)
        return SweepResult(
            self.transform,
            tuple(ranked),
            threshold,
            budget,
            tuple(row.scope for row in excluded),
            tuple(row.scope for row in remaining[:extra]),
            combined_loss,
            self.bench.builds + builds,
            time.perf_counter() - start,
            self.bench.loss_floor,
            moved,
        )

    def close(self) -> None:
        self._scratch.cleanup()

    def __enter__(self) -> Sweeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    max_moved_tokens: float = float("inf"),
    runs: RunStore | None = None,
) -> SweepResult:
    """Rank the groups of weight nodes of ``source`` by the loss ``transform`` causes.

    ``source`` should already be optimised (weights as initializers; see
    ``parity.builders.quantize``'s pre-processing). Groups over ``threshold`` are split down to
    ``max_depth`` scope levels and then excluded; the combined model must stay within
    ``budget``.
    """
    start = time.perf_counter()
    with Sweeper(
        source,
        transform,
        requests,
        calibration=calibration,
        depth=depth,
        max_depth=max_depth,
        loss=loss,
        max_moved_tokens=max_moved_tokens,
        runs=runs,
    ) as sweeper:
        rows = [row for scope in sorted(sweeper.groups) for row in sweeper.rank(scope, threshold)]
        result = sweeper.decide(rows, threshold=threshold, budget=budget)
    return replace(result, seconds=time.perf_counter() - start)


def _rank(  # noqa: PLR0917 - private recursion
    bench: CandidateBench,
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
        value, static, moved = bench.measure(names, every)
        row = SweepRow(scope, tuple(sorted(names)), "", value, static, moved)
        children = group_by_scope(members, depth + 1)
        hurts = row.hurts(threshold, bench.max_moved_tokens)
        if hurts and len(members) > 1 and depth < max_depth and len(children) > 1:
            rows.extend(_rank(bench, every, children, depth + 1, max_depth, threshold))
            continue
        op_types = ",".join(sorted({node.op_type for node in members}))
        rows.append(replace(row, op_types=op_types))
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


@dataclass(frozen=True)
class SweepSettings:
    """Everything that decides a sweep's outcome, stored with its baseline so it can rerun."""

    transform: Transform
    sentences: tuple[str, ...] = ("greeting",)
    requests: int = 2
    trained_voices: bool = False  # speak the first sentence in the trained voice packs
    threshold: float = 0.3
    budget: float = 0.45
    depth: int = 3
    max_depth: int = 6
    # The dynamic variants' mean bound on moved durations: a group that moves more is kept
    # float whatever its sound loss.
    max_moved_tokens: float = DYNAMIC_UINT8.mean.moved_tokens

    def requests_from(
        self, inputs: InputSet, voices: TrainedVoices | None = None
    ) -> list[KokoroInput]:
        """The fixed requests: the sentences in the seeded styles, taking each sentence in
        turn (every sentence named is heard), or one sentence in the first trained voices."""
        from parity.core.spec import load_config

        self._check_requests(inputs)
        vocab = voices.vocab if voices is not None else load_config("full")["vocab"]
        pairs = inputs.sentences(vocab, self.sentences)  # sentence-major
        styles = len(inputs.styles)
        by_style = [
            pairs[sentence * styles + row]
            for row in range(styles)
            for sentence in range(len(self.sentences))
        ]
        if not self.trained_voices:
            return by_style[: self.requests]
        if voices is None:
            from parity.builders.voices import load_voices

            voices = load_voices()
        if not 1 <= self.requests <= len(voices.packs):
            raise ParityError(
                f"sensitivity: --request-count {self.requests} with --trained-voices, but there "
                f"are {len(voices.packs)} trained voices; ask for 1 to {len(voices.packs)}"
            )
        return voices.spoken_by(by_style[:1], list(voices.packs)[: self.requests])

    def _check_requests(self, inputs: InputSet) -> None:
        """Every sentence named must exist and be heard: none is dropped without a word."""
        unknown = [key for key in self.sentences if key not in inputs.phonemes]
        if unknown:
            raise ParityError(
                f"sensitivity: --requests {unknown[0]!r} is not in the inputs' phonemes.json; "
                f"use one of {', '.join(sorted(inputs.phonemes))}"
            )
        if self.trained_voices and len(self.sentences) != 1:
            raise ParityError(
                "sensitivity: --trained-voices speaks one sentence in --request-count voices; "
                f"name one entry in --requests, not {len(self.sentences)}"
            )
        available = len(self.sentences) * len(inputs.styles)
        if not self.trained_voices and not len(self.sentences) <= self.requests <= available:
            raise ParityError(
                f"sensitivity: --request-count {self.requests} for {len(self.sentences)} sentences "
                f"x {len(inputs.styles)} styles; ask for {len(self.sentences)} to {available} so "
                "every sentence is heard"
            )

    def sweeper(self, source: Path, requests: Sequence[KokoroInput]) -> Sweeper:
        """A ``Sweeper`` with these settings; static transforms calibrate on the requests."""
        return Sweeper(
            source,
            self.transform,
            requests,
            calibration=requests,
            depth=self.depth,
            max_depth=self.max_depth,
            max_moved_tokens=self.max_moved_tokens,
        )

    def run(
        self, source: Path, requests: Sequence[KokoroInput], runs: RunStore | None = None
    ) -> SweepResult:
        """``sweep`` with these settings; static transforms calibrate on the requests; each
        group's figures come from ``runs`` where it holds them."""
        return sweep(
            source,
            self.transform,
            requests,
            threshold=self.threshold,
            budget=self.budget,
            calibration=requests,
            depth=self.depth,
            max_depth=self.max_depth,
            max_moved_tokens=self.max_moved_tokens,
            runs=runs,
        )
