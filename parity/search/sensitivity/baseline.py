"""Stored sweep baselines: re-measure their decision, compare, and say what moved."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from parity.core.cache import write_text_atomic
from parity.core.errors import ParityError
from parity.core.graph import load_model
from parity.core.inputs import KokoroInput
from parity.core.jsonable import to_jsonable
from parity.core.memo import RunStore

if TYPE_CHECKING:
    pass

from parity.search.sensitivity.candidates import CandidateBench, mean_log_mel, weight_nodes
from parity.search.sensitivity.result import (
    SweepResult,
)
from parity.search.sensitivity.sweeper import SweepSettings


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
        bench = CandidateBench(
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
class SweepVerdict:
    """Whether a sweep holds, as ``parity sensitivity`` (its exit code) and the sweep's pytest
    session (its exit status) both judge it: one reason per failed check."""

    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.reasons

    def line(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "the sweep holds"


def judge_sweep(result: SweepResult, drift: SweepDrift | None = None) -> SweepVerdict:
    """The combined model within the budget (a loss that overflowed is not); against a stored
    baseline, also nothing moved, crossed, appeared or vanished."""
    reasons = []
    if not result:
        reasons.append(
            f"the combined model's loss {result.combined_loss:.3f} is over the budget "
            f"{result.budget:g} ({len(result.excluded) + len(result.extra_excluded)} of "
            f"{len(result.rows)} groups kept out)"
        )
    if drift is not None and not drift:
        reasons.append(f"the sweep drifted from its baseline: {drift.summary()}")
    return SweepVerdict(tuple(reasons))
