"""``parity report --compare OLD NEW``: which gates and figures moved between two runs.

Outcome changes come first (a check that no longer runs counts as worse), then figures that
moved beyond noise, judged by what a rise of each means (a cost, a benefit, a signed figure).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from parity.judge.tolerances import QUALITY_NOISE, TIMING_NOISE
from parity.report.run_report import Gate, Report

__all__ = ["Change", "compare_reports", "render_comparison"]


@dataclass(frozen=True)
class Change:
    """A gate or figure that differs between two reports beyond noise."""

    test: str
    what: str  # "outcome" or the figure's key path
    old: Any
    new: Any
    verdict: str  # worse, better; new or gone (in one run only); changed (a setting: unjudged)
    detail: str = field(default="")

    @property
    def worse(self) -> bool:
        return self.verdict == "worse"

    def line(self) -> str:
        shown = self.verdict.upper() if self.worse else self.verdict
        return (
            f"{shown}: `{self.test}` {self.what}: {self.old} -> {self.new} {self.detail}".rstrip()
        )


# What a figure's rise means, by the names on its key path. Every figure is a cost (errors,
# distances, losses, sizes, times) unless named here.
_SETTINGS = {  # settings and counts: a change is listed, never judged
    "audio_seconds",
    "blocked_by",
    "budget",
    "builds",
    "depth",
    "initializers_converted",
    "node_count",
    "nodes_blocked",
    "nodes_converted",
    "repeats",
    "requests",
    "rows_checked",
    "size_before",
    "threshold",
    "tokens",
    "tolerance",
}
# Noise about noise (a timing's spread over its repeats): never compared.
_UNCOMPARED = {"spread"}
_BENEFITS = {"durations_equal"}  # a fall is worse
_SIGNED = {"length_change", "loudness_db"}  # worse as it moves away from zero either way
# Real-time factors, in-run ratios and a latency record's seconds are timings (noisy); any
# other "seconds" is how long a build took, which depends on the cache: not compared.
_TIMINGS = {"rtf", "ratios"}
# Keys that name an item of a list or a result, so figures pair by name, not position.
_IDENTITY = ("scope", "variant", "model", "name")


def _parts(path: str) -> set[str]:
    """The key names on a figure's path, leaving out the item names in brackets."""
    return {part for part in re.split(r"[.:]", re.sub(r"\[[^\]]*\]", "", path)) if part}


def _is_timing(parts: set[str]) -> bool:
    return bool(parts & _TIMINGS) or {"record", "seconds"} <= parts


def _compared(path: str) -> bool:
    parts = _parts(path)
    return not (parts & _UNCOMPARED or ("seconds" in parts and not _is_timing(parts)))


def _judge(path: str, old: float, new: float) -> str | None:
    """The verdict on a compared figure's move from ``old`` to ``new``; None if it did not
    move beyond noise."""
    parts = _parts(path)
    timing = _is_timing(parts)
    if parts & _SETTINGS:
        return "changed" if new != old else None  # deterministic: any change is listed
    if parts & _SIGNED:
        old, new = abs(old), abs(new)
    noise = TIMING_NOISE if timing else QUALITY_NOISE
    if abs(new - old) <= noise * max(abs(old), abs(new)):
        return None
    return "worse" if (new > old) != bool(parts & _BENEFITS) else "better"


def _label(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((str(value[k]) for k in _IDENTITY if isinstance(value.get(k), str)), None)
    return None


def _numbers(value: Any, path: str = "") -> dict[str, float]:
    """Every finite number in a figure's data, by key path (booleans are not figures); a
    result or list item that names itself (a scope, a variant) is keyed by that name."""
    found: dict[str, float] = {}
    if isinstance(value, dict):
        name = _label(value)
        here = f"{path}[{name}]" if name is not None and path else path
        for key, item in value.items():
            found.update(_numbers(item, f"{here}.{key}" if here else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_numbers(item, path if _label(item) else f"{path}[{index}]"))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        found[path] = float(value)
    return found


def _figures_of(gate: Gate) -> dict[str, float]:
    numbers: dict[str, float] = {}
    for index, figure in enumerate(gate.figures):
        for path, value in _numbers(figure.get("data", {})).items():
            key = f"{figure.get('section', index)}:{path}"
            numbers[key if key not in numbers else f"{key}#{index}"] = value
    return numbers


def _outcome_changes(before: Mapping[str, Gate], new: Report) -> list[Change]:
    """Gates that started or stopped failing, and gates that checked something before and no
    longer do (skipped now, or not in the new run): a lost check is worse, not silence."""
    changes = []
    for gate in new.gates:
        previous = before.get(gate.test)
        was = "(new test)" if previous is None else previous.outcome
        if (previous is None and gate.failing) or (
            previous is not None and previous.failing != gate.failing
        ):
            verdict = "worse" if gate.failing else "better"
            changes.append(
                Change(gate.test, "outcome", was, gate.outcome, verdict, gate.message or "")
            )
        elif previous is not None and _checked(previous) and gate.outcome == "skipped":
            changes.append(
                Change(gate.test, "outcome", was, "skipped", "worse", gate.message or "")
            )
    ran = {gate.test for gate in new.gates}
    changes += [
        Change(test, "outcome", gate.outcome, "(not run)", "worse", "no longer checked")
        for test, gate in before.items()
        if test not in ran and _checked(gate)
    ]
    return changes


def _checked(gate: Gate) -> bool:
    return gate.outcome in ("passed", "xfailed")


def _shown(a: float, b: float) -> tuple[str, str]:
    """The two values with as many digits as it takes to tell them apart (4 at least)."""
    digits = 4
    while f"{a:.{digits}g}" == f"{b:.{digits}g}" and digits < 12:
        digits += 1
    return f"{a:.{digits}g}", f"{b:.{digits}g}"


def _figure_changes(test: str, old: dict[str, float], new: dict[str, float]) -> list[Change]:
    """Figures of one gate that moved beyond noise, and those only one run has (a sweep
    splits a group that hurts into its layers: the layer's row is new)."""
    changes = []
    for path in sorted(path for path in old.keys() | new.keys() if _compared(path)):
        a, b = old.get(path), new.get(path)
        if a is None or b is None:
            only = "new" if a is None else "gone"
            value = f"{a if b is None else b:.4g}"
            changes.append(
                Change(test, path, *(("(none)", value) if a is None else (value, "(none)")), only)
            )
            continue
        verdict = _judge(path, a, b)
        if verdict is not None:
            relative = f"({b / a - 1:+.0%})" if a else ""
            changes.append(Change(test, path, *_shown(a, b), verdict, relative))
    return changes


_ORDER = ("worse", "better", "new", "gone", "changed")


def compare_reports(old: Report, new: Report) -> list[Change]:
    """Outcome changes first, then figures that moved beyond noise (timing 30%, quality 5%):
    worse, better, new or gone, and last the settings and counts that changed (unjudged)."""
    before = {gate.test: gate for gate in old.gates}
    moved = [
        change
        for gate in new.gates
        if gate.test in before
        for change in _figure_changes(gate.test, _figures_of(before[gate.test]), _figures_of(gate))
    ]
    return _outcome_changes(before, new) + sorted(moved, key=lambda c: _ORDER.index(c.verdict))


def render_comparison(changes: Sequence[Change], old: str, new: str) -> str:
    if not changes:
        return f"# {old} -> {new}\n\nNothing moved beyond noise.\n"
    counted = {verdict: sum(c.verdict == verdict for c in changes) for verdict in _ORDER}
    lines = [
        f"# {old} -> {new}",
        "",
        f"{counted['worse']} worse, {counted['better']} better beyond noise; "
        f"{counted['new'] + counted['gone']} figures new or gone; "
        f"{counted['changed']} settings or counts changed.",
        "",
    ]
    lines += [f"- {change.line()}" for change in changes]
    return "\n".join(lines) + "\n"
