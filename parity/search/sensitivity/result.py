"""What a sweep measured and decided: one row per group, and the result with its decision."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from parity.core.cache import write_text_atomic
from parity.core.jsonable import to_jsonable

Transform = Literal["int8-dynamic", "int8-qdq", "int8-gemm", "fp16"]
TRANSFORMS: tuple[Transform, ...] = ("int8-dynamic", "int8-qdq", "int8-gemm", "fp16")
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


@dataclass(frozen=True)
class GroupCheck:
    """One group's rows against the group: each of its weight nodes measured exactly once, so
    the decision can keep or transform every node (what a row does not name, the combined
    model transforms unmeasured)."""

    scope: str
    missing: tuple[str, ...]  # nodes of the group no row measured
    repeated: tuple[str, ...]  # nodes more than one row measured
    strays: tuple[str, ...]  # nodes a row measured that are not the group's
    # Names several nodes of the group share: the transform keeps nodes by name, so these
    # cannot be told apart (an unnamed node is "").
    ambiguous: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return not (self.missing or self.repeated or self.strays or self.ambiguous)

    def message(self) -> str:
        problems = [
            f"{len(names)} node(s) {what} (first: {names[0]})"
            for names, what in (
                (self.missing, "not measured"),
                (self.repeated, "measured twice"),
                (self.strays, "measured from outside it"),
                (self.ambiguous, "sharing a name with another node"),
            )
            if names
        ]
        return f"sensitivity: the rows of group {self.scope}: " + (
            "; ".join(problems) or "every node measured once"
        )


def check_group(scope: str, nodes: Iterable[str], rows: Sequence[SweepRow]) -> GroupCheck:
    """Judge the rows ranked for ``scope`` by the group's ``nodes``."""
    names = Counter(nodes)
    counts = Counter(node for row in rows for node in row.nodes)
    return GroupCheck(
        scope,
        tuple(sorted(set(names) - set(counts))),
        _shared(counts),
        tuple(sorted(set(counts) - set(names))),
        _shared(names),
    )


def _shared(counts: Counter[str]) -> tuple[str, ...]:
    return tuple(sorted(name for name, count in counts.items() if count > 1))


def _number(value: float | None) -> float:
    """JSON keeps NaN (an overflowed loss) as null."""
    return float("nan") if value is None else float(value)
