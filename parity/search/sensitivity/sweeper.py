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
import hashlib
import io
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnx

from parity.core.cache import content_digest, write_text_atomic
from parity.core.errors import ParityError
from parity.core.graph import load_model
from parity.core.inputs import InputSet, KokoroInput
from parity.core.jsonable import to_jsonable
from parity.core.memo import RunStore
from parity.judge.metrics import MEL, aligned_distance, noise_floor_db
from parity.judge.tolerances import STYLE_NUDGE

if TYPE_CHECKING:
    from parity.builders.weights import TrainedVoices
    from parity.judge.runners import KokoroOutput

__all__ = [
    "SweepDrift",
    "SweepResult",
    "SweepRow",
    "SweepSettings",
    "Sweeper",
    "Transform",
    "compare_with_baseline",
    "recheck",
    "sweep",
]

Transform = Literal["int8-dynamic", "int8-qdq", "fp16"]
TRANSFORMS: tuple[Transform, ...] = ("int8-dynamic", "int8-qdq", "fp16")
WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
# The code behind one measured build (transform, run, loss), by transform: its source is in
# the run key, so editing the float16 converter does not re-measure an int8 sweep.
_MEASURE_MODULES = (
    "search/sensitivity.py",
    "judge/quality.py",
    "judge/metrics.py",
    "judge/runners.py",
    "builders/timing.py",
)
_TRANSFORM_MODULES = {
    "fp16": ("builders/fp16.py",),
    "int8-dynamic": ("builders/quantize.py",),
    "int8-qdq": ("builders/quantize.py",),
}
# A waveform-level loss: (reference, candidate) -> number, larger is worse.
Loss = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class SweepRow:
    """One group transformed alone: its scope, nodes and the loss it caused."""

    scope: str
    nodes: tuple[str, ...] = field(repr=False)
    op_types: str
    loss: float
    static_db: float = float("nan")  # rise of the noise floor (``metrics.noise_floor_db``)
    # Share of tokens whose frame count the transform moved: the loss cannot see timing,
    # since every candidate speaks on the source's durations; this figure does.
    moved_tokens: float = float("nan")

    def hurts(self, threshold: float, max_moved_tokens: float) -> bool:
        """Over the sound threshold (NaN, an overflow, hurts too) or moving more durations
        than allowed: the loss, measured on forced timing, cannot see the latter."""
        return not self.loss <= threshold or self.moved_tokens > max_moved_tokens

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepRow:
        return cls(
            data["scope"],
            tuple(data["nodes"]),
            data["op_types"],
            _number(data["loss"]),
            _number(data.get("static_db")),
            _number(data.get("moved_tokens")),
        )


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
    floor: float = float("nan")  # the source against itself: style nudge or empty transform
    max_moved_tokens: float = float("inf")  # a group moving more durations is excluded too

    def __bool__(self) -> bool:
        return bool(np.isfinite(self.combined_loss)) and self.combined_loss <= self.budget

    def excluded_nodes(self) -> list[str]:
        keep = {*self.excluded, *self.extra_excluded}
        return sorted(node for row in self.rows if row.scope in keep for node in row.nodes)

    def summary(self) -> str:
        return (
            f"{self.transform}: {len(self.rows)} groups in {self.builds} builds "
            f"({self.seconds:.0f}s); {len(self.excluded)} over {self.threshold:g} or moving over "
            f"{self.max_moved_tokens:.0%} of durations excluded, "
            f"{len(self.extra_excluded)} more by bisection; combined loss "
            f"{self.combined_loss:.3f} (budget {self.budget:g}); noise floor {self.floor:.3f}"
        )

    def write(self, folder: Path) -> None:
        """``sensitivity.json`` (everything) and ``sensitivity.csv`` (one row per group)."""
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "sensitivity.json", json.dumps(to_jsonable(self), indent=2))
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(
            ["scope", "op_types", "nodes", "loss", "static_db", "moved_tokens", "excluded"]
        )
        kept_out = {*self.excluded, *self.extra_excluded}
        for row in self.rows:
            writer.writerow(
                [
                    row.scope,
                    row.op_types,
                    len(row.nodes),
                    f"{row.loss:.6g}",
                    f"{row.static_db:.3g}",
                    f"{row.moved_tokens:.3g}",
                    row.scope in kept_out,
                ]
            )
        write_text_atomic(folder / "sensitivity.csv", table.getvalue())
        from parity.core.plots import draw, sensitivity_bars

        draw(sensitivity_bars, folder / "sensitivity.png", self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepResult:
        """The inverse of ``to_jsonable``: a result read back from ``sensitivity.json``."""
        rows = tuple(SweepRow.from_json(r) for r in data["rows"])
        return cls(
            data["transform"],
            rows,
            data["threshold"],
            data["budget"],
            tuple(data["excluded"]),
            tuple(data["extra_excluded"]),
            _number(data["combined_loss"]),
            data["builds"],
            data["seconds"],
            _number(data.get("floor")),
            _number(data.get("max_moved_tokens", float("inf"))),
        )


def _number(value: float | None) -> float:
    """JSON keeps NaN (an overflowed loss) as null."""
    return float("nan") if value is None else float(value)


def mean_log_mel(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Log-mel distance with timing removed (``parity.judge.metrics.aligned_distance``): frame i
    against frame i when the lengths match, as they do when the sweep forces the source's
    durations (``parity.builders.timing``); aligned by DTW when they do not."""
    same = len(reference) == len(candidate)
    return aligned_distance(reference, candidate, frames_match=same).log_mel


def weight_nodes(model: onnx.ModelProto, transform: Transform) -> list[onnx.NodeProto]:
    """Nodes whose second input is a stored weight and that ``transform`` can change."""
    from parity.builders.quantize import QuantRecipe

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
        max_moved_tokens: float = float("inf"),
        runs: RunStore | None = None,
    ) -> None:
        from parity.judge.quality import listen, nudged

        self.runs = runs or RunStore(None)
        self.max_moved_tokens = max_moved_tokens
        self.source, self.transform, self.requests = source, transform, list(requests)
        self.calibration, self.loss, self.scratch = list(calibration), loss, scratch
        # Every candidate speaks on the source's durations, so a loss is what the transform
        # did to the sound, not where a rounded duration shifted the frames.
        self.reference = listen(source, self.requests, runs=self.runs)
        self.floor = float(np.mean([_floor(out.waveform) for out in self.reference]))
        nudged_outputs = listen(source, nudged(self.requests), self.reference, runs=self.runs)
        self.nudge_floor = self._loss(nudged_outputs)
        self.pipeline_floor = float("nan")  # set by the Sweeper: one build, nothing transformed
        self.builds = 0

    @property
    def loss_floor(self) -> float:
        """The larger of the two ways the source differs from itself: its style moved by
        1e-7, and the transform's pipeline run with no node transformed (graph rewriting
        alone changes rounding, which chaos then amplifies)."""
        return float(np.nanmax([self.nudge_floor, self.pipeline_floor]))

    def _loss(self, outputs: Sequence[KokoroOutput]) -> float:
        pairs = zip(self.reference, outputs, strict=True)
        return float(np.mean([self.loss(ref.waveform, out.waveform) for ref, out in pairs]))

    def require_above_floor(self, threshold: float, what: str) -> None:
        """One line, and no sweep, when no group could be told from chaos."""
        if not threshold > self.loss_floor:
            raise ParityError(
                f"sensitivity: the {what} {threshold:g} is not above the loss's noise floor "
                f"{self.loss_floor:.3f} (the source against itself: {self.nudge_floor:.3f} with "
                f"its style moved by {STYLE_NUDGE:g}, {self.pipeline_floor:.3f} through the "
                "transform with no node transformed): no group can be told from chaos; raise "
                f"the {what} above {self.loss_floor:.3f}, or sweep a model whose audio is stable"
            )

    def measure(self, transformed: set[str], all_nodes: set[str]) -> tuple[float, float, float]:
        """(loss, noise-floor rise in dB, share of tokens moved) when exactly the
        ``transformed`` nodes change; from the run store when this very build was measured."""
        from parity.core.memo import array_digest, request_digest, source_digest

        keep = sorted(all_nodes - transformed)
        self.builds += 1
        parts = {
            "source": content_digest(self.source),
            "transform": self.transform,
            "kept": hashlib.sha256("\n".join(keep).encode()).hexdigest(),
            "requests": [request_digest(r) for r in self.requests],
            "calibration": [request_digest(r) for r in self.calibration],
            "reference": array_digest(*[r.waveform for r in self.reference]),
            "loss": getattr(self.loss, "__name__", repr(self.loss)),
            "code": source_digest(
                (*_MEASURE_MODULES, *_TRANSFORM_MODULES[self.transform]),
                ("onnxruntime", "onnx", "numpy", "librosa"),
            ),
        }
        figures = self.runs.record("sweep", parts, lambda: list(self._build_and_hear(keep)))
        return float(figures[0]), float(figures[1]), float(figures[2])

    def _build_and_hear(self, keep: list[str]) -> tuple[float, float, float]:
        from parity.judge.quality import listen

        target = self.scratch / f"candidate-{self.builds}.onnx"
        if self.transform == "fp16":
            from parity.builders.fp16 import Fp16Options, convert_file

            convert_file(self.source, target, Fp16Options(block_nodes=frozenset(keep)))
        else:
            from parity.builders.quantize import QuantRecipe, quantize_model

            recipe = QuantRecipe(
                mode="dynamic" if self.transform == "int8-dynamic" else "qdq",
                exclude_nodes=tuple(keep),
                exclude_scopes=(),
                preprocess=False,
            )
            quantize_model(self.source, target, recipe, self.calibration)
        outputs = listen(target, self.requests, self.reference)
        target.unlink()
        static = float(np.mean([_floor(out.waveform) for out in outputs])) - self.floor
        return self._loss(outputs), static, _moved_share(self.reference, outputs)


def _moved_share(reference: Sequence[KokoroOutput], outputs: Sequence[KokoroOutput]) -> float:
    """Mean share of tokens whose predicted frame count differs; NaN without durations."""
    from parity.judge.quality import moved_share

    shares = [moved_share(a, b) for a, b in zip(reference, outputs, strict=True)]
    finite = [share for share in shares if np.isfinite(share)]
    return float(np.mean(finite)) if finite else float("nan")


def _floor(waveform: np.ndarray) -> float:
    """``noise_floor_db``, or NaN where the audio is shorter than one frame or not finite."""
    if len(waveform) < MEL.n_fft or not np.isfinite(waveform).all():
        return float("nan")
    return noise_floor_db(waveform)


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
        self.groups = _groups(nodes, depth)
        self._scratch = tempfile.TemporaryDirectory(prefix="parity-sweep-")
        self.bench = _Bench(
            Path(source),
            transform,
            requests,
            calibration,
            loss,
            Path(self._scratch.name),
            max_moved_tokens,
        )
        self.bench.pipeline_floor = self.bench.measure(set(), self.every)[0]

    def rank(self, scope: str, threshold: float) -> list[SweepRow]:
        """The rows of one first-level group: itself, or its sub-scopes where it hurts."""
        self.bench.require_above_floor(threshold, "threshold")
        group = {scope: self.groups[scope]}
        return _rank(self.bench, self.every, group, self.depth, self.max_depth, threshold)

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
    ) as sweeper:
        rows = [row for scope in sorted(sweeper.groups) for row in sweeper.rank(scope, threshold)]
        result = sweeper.decide(rows, threshold=threshold, budget=budget)
    return replace(result, seconds=time.perf_counter() - start)


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
        value, static, moved = bench.measure(names, every)
        row = SweepRow(scope, tuple(sorted(names)), "", value, static, moved)
        children = _groups(members, depth + 1)
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
    # The gates' bound on moved durations (tolerances.INT8_VARIANTS): a group that moves
    # more is kept float whatever its sound loss.
    max_moved_tokens: float = 0.02

    def requests_from(
        self, inputs: InputSet, voices: TrainedVoices | None = None
    ) -> list[KokoroInput]:
        """The fixed requests: sentences x seeded styles, or the first one in trained voices."""
        from parity.builders.model import load_config

        vocab = voices.vocab if voices is not None else load_config("full")["vocab"]
        chosen = inputs.sentences(vocab, self.sentences)[: self.requests]
        if self.trained_voices:
            if voices is None:
                from parity.builders.weights import load_voices

                voices = load_voices()
            chosen = voices.spoken_by(chosen[:1], list(voices.packs)[: self.requests])
        return chosen

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

    def run(self, source: Path, requests: Sequence[KokoroInput]) -> SweepResult:
        """``sweep`` with these settings; static transforms calibrate on the requests."""
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
        )


@dataclass(frozen=True)
class LossMove:
    """A group whose loss moved beyond the tolerance since the baseline."""

    scope: str
    baseline: float
    measured: float


@dataclass(frozen=True)
class SweepDrift:
    """A new measurement judged against a stored sweep: what moved and whether it still holds."""

    rows_checked: int
    moved: tuple[LossMove, ...]
    flipped: tuple[str, ...]  # groups now on the other side of the threshold
    added: tuple[str, ...]  # groups the baseline does not have (a changed graph)
    missing: tuple[str, ...]  # baseline groups the new sweep no longer has
    combined_loss: float
    budget: float
    tolerance: float

    def __bool__(self) -> bool:
        within = bool(np.isfinite(self.combined_loss)) and self.combined_loss <= self.budget
        return within and not (self.moved or self.flipped or self.added or self.missing)

    def summary(self) -> str:
        parts = [
            f"{self.rows_checked} groups re-measured; combined loss {self.combined_loss:.3f} "
            f"(budget {self.budget:g})"
        ]
        parts += [
            f"{m.scope} moved {m.baseline:.3f} -> {m.measured:.3f} (tolerance {self.tolerance:g})"
            for m in self.moved
        ]
        parts += [f"{scope} crossed the threshold" for scope in self.flipped]
        parts += [f"{scope} is new" for scope in self.added]
        parts += [f"{scope} is gone" for scope in self.missing]
        return "; ".join(parts)


def compare_with_baseline(
    measured: SweepResult, baseline: SweepResult, *, complete: bool, tolerance: float
) -> SweepDrift:
    """Judge ``measured`` (a full sweep when ``complete``, else a ``recheck``) by ``baseline``."""
    old = {row.scope: row for row in baseline.rows}
    new = {row.scope: row for row in measured.rows}
    moved, flipped = [], []
    for scope, row in new.items():
        if scope not in old:
            continue
        before = old[scope].loss
        both_nan = np.isnan(before) and np.isnan(row.loss)
        if not both_nan and not abs(row.loss - before) <= tolerance:
            moved.append(LossMove(scope, before, row.loss))
        limits = (baseline.threshold, baseline.max_moved_tokens)
        if old[scope].hurts(*limits) != row.hurts(*limits):
            flipped.append(scope)
    return SweepDrift(
        len(new),
        tuple(moved),
        tuple(flipped),
        tuple(sorted(set(new) - set(old))),
        tuple(sorted(set(old) - set(new))) if complete else (),
        measured.combined_loss,
        baseline.budget,
        tolerance,
    )


def recheck(
    source: Path,
    settings: SweepSettings,
    baseline: SweepResult,
    requests: Sequence[KokoroInput],
    *,
    harmless: int = 2,
    runs: RunStore | None = None,
) -> SweepResult:
    """Re-measure a stored sweep's decision without sweeping everything again.

    Measures each group the baseline excluded, the ``harmless`` worst groups it kept (the
    ones closest to flipping), and the combined model with the baseline's exclusions: a
    handful of builds instead of a full sweep, enough to catch a decision that no longer
    holds.
    """
    start = time.perf_counter()
    model = load_model(source, external_data=False)
    every = {node.name for node in weight_nodes(model, settings.transform)}
    kept_out = {*baseline.excluded, *baseline.extra_excluded}
    chosen = [row for row in baseline.rows if row.scope in kept_out]
    chosen += [row for row in baseline.rows if row.scope not in kept_out][:harmless]
    with tempfile.TemporaryDirectory() as scratch:
        bench = _Bench(
            Path(source),
            settings.transform,
            requests,
            requests,
            mean_log_mel,
            Path(scratch),
            settings.max_moved_tokens,
            runs,
        )
        rows = []
        for row in chosen:
            present = set(row.nodes) & every
            nothing = (float("nan"), 0.0, float("nan"))
            loss, static, moved = bench.measure(present, every) if present else nothing
            rows.append(replace(row, loss=loss, static_db=static, moved_tokens=moved))
        out = {node for row in baseline.rows if row.scope in kept_out for node in row.nodes}
        combined = bench.measure(every - out, every)[0]
    rows.sort(key=lambda row: row.loss, reverse=True)
    return SweepResult(
        settings.transform,
        tuple(rows),
        baseline.threshold,
        baseline.budget,
        tuple(
            row.scope for row in rows if row.hurts(baseline.threshold, settings.max_moved_tokens)
        ),
        (),
        combined,
        bench.builds,
        time.perf_counter() - start,
        bench.loss_floor,
        settings.max_moved_tokens,
    )


def write_baseline(path: Path, settings: SweepSettings, result: SweepResult) -> None:
    """Store a sweep and the settings that produced it (atomically), for ``load_baseline``."""
    from parity.core.plots import draw, sensitivity_bars

    document = {"settings": to_jsonable(settings), "result": to_jsonable(result)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(document, indent=1) + "\n")
    draw(sensitivity_bars, path.with_suffix(".png"), result)


def load_baseline(path: Path) -> tuple[SweepSettings, SweepResult]:
    """A stored sweep; a clear error when it is missing or unreadable."""
    if not path.is_file():
        raise ParityError(
            f"sensitivity: no baseline at {path}; write it with pytest --parity-regen "
            f"-k sensitivity_baseline (or parity sensitivity --baseline {path} --regen)"
        )
    try:
        document = json.loads(path.read_text("utf-8"))
        raw = dict(document["settings"])
        raw["sentences"] = tuple(raw["sentences"])
        return SweepSettings(**raw), SweepResult.from_json(document["result"])
    except (ValueError, KeyError, TypeError) as error:
        raise ParityError(
            f"sensitivity: baseline {path} is unreadable ({type(error).__name__}: {error}); "
            "regenerate it with --parity-regen"
        ) from error


# The sweeps stored under fixtures/baselines/, by file stem. Settings as measured for the
# README: the greeting in two trained voices, module scopes from depth 3 down to nodes.
BASELINES: dict[str, SweepSettings] = {
    "trained-int8-dynamic": SweepSettings("int8-dynamic", trained_voices=True),
}


def check_baseline(
    path: Path,
    settings: SweepSettings,
    source: Path,
    requests: Sequence[KokoroInput],
    *,
    full: bool,
    runs: RunStore | None = None,
) -> tuple[SweepResult, SweepDrift]:
    """Measure ``source`` again (a full sweep, or a ``recheck``) and judge it by the baseline."""
    from parity.judge.tolerances import SWEEP_LOSS_DRIFT

    stored_settings, baseline = load_baseline(path)
    if stored_settings != settings:
        raise ParityError(
            f"sensitivity: baseline {path} was measured with {stored_settings}, not "
            f"{settings}; rewrite it with --parity-regen"
        )
    if full:
        measured = settings.run(source, requests)
    else:
        measured = recheck(source, settings, baseline, requests, runs=runs)
    drift = compare_with_baseline(measured, baseline, complete=full, tolerance=SWEEP_LOSS_DRIFT)
    return measured, drift


@dataclass(frozen=True)
class SweepJob:
    """A sweep spread over pytest items (``parity.search.sweep_items``): its parts and their
    merge."""

    model: Path  # already pre-processed
    out: Path
    settings: SweepSettings

    @property
    def parts(self) -> Path:
        return self.out / "parts"

    def scopes(self) -> list[str]:
        """The first-level groups, one pytest item each (the same list on every worker)."""
        nodes = weight_nodes(load_model(self.model, external_data=False), self.settings.transform)
        return sorted(_groups(nodes, self.settings.depth))

    def part_path(self, scope: str) -> Path:
        import hashlib

        return self.parts / f"{hashlib.sha256(scope.encode()).hexdigest()[:16]}.json"

    def write_part(self, scope: str, rows: Sequence[SweepRow], builds: int) -> None:
        part = {"scope": scope, "builds": builds, "rows": [to_jsonable(row) for row in rows]}
        self.parts.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.part_path(scope), json.dumps(part))

    def merge(self, sweeper: Sweeper) -> SweepResult:
        """Every part's rows, decided and verified by ``sweeper`` (the caller writes it)."""
        parts = [json.loads(path.read_text("utf-8")) for path in sorted(self.parts.glob("*.json"))]
        missing = sorted(set(self.scopes()) - {part["scope"] for part in parts})
        if missing:
            raise ParityError(
                f"sensitivity: {len(missing)} group(s) of {self.model} were not measured "
                f"(first: {missing[0]}); rerun the sweep items without deselecting any"
            )
        rows = [SweepRow.from_json(row) for part in parts for row in part["rows"]]
        return sweeper.decide(
            rows,
            threshold=self.settings.threshold,
            budget=self.settings.budget,
            builds=sum(int(part["builds"]) for part in parts),
        )
