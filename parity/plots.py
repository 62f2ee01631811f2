"""PNG plots of measured results, drawn with matplotlib's Agg backend.

A plot is an aid to a number that is already stored, so ``draw`` never raises: a missing
font, an odd value or a full disk is logged and the run goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.cache import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from parity.sensitivity import SweepResult

__all__ = ["draw", "sensitivity_bars"]

LOG = logging.getLogger("parity.plots")
WORST_ROWS = 20


def draw(plot: Callable[..., Figure], target: Path, *args: Any) -> Path | None:
    """Render ``plot(*args)`` to ``target`` (atomically); None, with a log line, if it fails."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib import pyplot as plt

        figure = plot(*args)
        try:
            with atomic_path(Path(target)) as temporary:
                figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
        finally:
            plt.close(figure)
    except Exception as error:  # a plot must never fail the run that measured its numbers
        LOG.warning("plot %s not drawn: %s: %s", target, type(error).__name__, error)
        return None
    return Path(target)


def sensitivity_bars(result: SweepResult) -> Figure:
    """The worst groups of a sweep as horizontal bars, excluded ones in red, threshold marked."""
    from matplotlib import pyplot as plt

    rows = list(result.rows[:WORST_ROWS])
    kept_out = {*result.excluded, *result.extra_excluded}
    height = 1.2 + 0.32 * max(len(rows), 1)
    figure, axes = plt.subplots(figsize=(9, height))
    labels = [f"{row.scope} ({row.op_types}, {len(row.nodes)})" for row in reversed(rows)]
    # A NaN loss (an overflow) is the worst possible: draw it at the right edge, hatched.
    finite = [row.loss for row in rows if math.isfinite(row.loss)]
    edge = max([*finite, result.threshold]) * 1.1
    values = [row.loss if math.isfinite(row.loss) else edge for row in reversed(rows)]
    colours = ["#c0392b" if row.scope in kept_out else "#5d6d7e" for row in reversed(rows)]
    bars = axes.barh(range(len(rows)), values, color=colours)
    for bar, row in zip(bars, reversed(rows), strict=True):
        if not math.isfinite(row.loss):
            bar.set_hatch("//")
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    axes.axvline(result.threshold, color="black", linestyle="--", linewidth=1)
    axes.text(result.threshold, len(rows) - 0.4, f" threshold {result.threshold:g}", fontsize=8)
    axes.set_xlabel("loss against the untransformed model (mean |Δ log-mel|, natural log)")
    axes.set_title(
        f"{result.transform}: {min(len(rows), WORST_ROWS)} worst of {len(result.rows)} groups "
        f"(red: kept out); combined {result.combined_loss:.3f}, budget {result.budget:g}",
        fontsize=10,
    )
    axes.grid(axis="x", alpha=0.3)
    return figure

