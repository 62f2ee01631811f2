"""A sweep spread over pytest items (``parity.search.sweep_items``): its parts and their merge."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from parity.core.cache import write_text_atomic
from parity.core.errors import ParityError
from parity.core.graph import load_model
from parity.core.jsonable import to_jsonable

if TYPE_CHECKING:
    pass

from parity.search.sensitivity.candidates import group_by_scope, weight_nodes
from parity.search.sensitivity.result import (
    SweepResult,
    SweepRow,
)
from parity.search.sensitivity.sweeper import Sweeper, SweepSettings


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
        return sorted(group_by_scope(nodes, self.settings.depth))

    def part_path(self, scope: str) -> Path:

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
