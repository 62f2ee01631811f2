"""PNG plots of measured results, drawn with matplotlib's Agg backend.

A plot is an aid to a number that is already stored, so ``draw`` never raises: a missing
font, an odd value or a full disk is logged and the run goes on. Plots read plain arrays
and the named attributes of result objects (duck-typed), so this module imports nothing
from the stages whose results it draws and sits below all of them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.core.cache import atomic_path

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

__all__ = [
    "draw",
    "latency_bars",
    "mel_comparison",
    "run_speed_quality",
    "sensitivity_bars",
    "speed_quality_scatter",
]

LOG = logging.getLogger("parity.core.plots")
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


def sensitivity_bars(result: Any) -> Figure:
    """The worst groups of a sweep (``parity.search.sensitivity.SweepResult``) as horizontal
    bars, excluded ones in red, threshold marked."""
    from matplotlib import pyplot as plt

    rows = list(result.rows[:WORST_ROWS])
    kept_out = {*result.excluded, *result.extra_excluded}
    height = 1.2 + 0.32 * max(len(rows), 1)
    figure, axes = plt.subplots(figsize=(9, height))
    labels = [
        f"{row.scope} ({row.op_types}, {len(row.nodes)})"
        + (f", moves {row.moved_tokens:.0%} of durations" if row.moved_tokens > 0 else "")
        for row in reversed(rows)
    ]
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
    if math.isfinite(result.floor):  # below it, a group cannot be told from chaos
        axes.axvline(result.floor, color="#7f8c8d", linestyle=":", linewidth=1)
        axes.text(result.floor, -0.9, f" noise floor {result.floor:.3f}", fontsize=8)
    axes.set_xlabel(
        "loss against the untransformed model (|Δ log-mel| with timing forced, natural log)"
    )
    axes.set_title(
        f"{result.transform}: {min(len(rows), WORST_ROWS)} worst of {len(result.rows)} groups "
        f"(red: kept out); combined {result.combined_loss:.3f}, budget {result.budget:g}",
        fontsize=10,
    )
    axes.grid(axis="x", alpha=0.3)
    return figure


def latency_bars(records: list[Any]) -> Figure:
    """Real-time factor per model, one bar per provider (``parity.measure.bench.LatencyRecord``)."""
    from matplotlib import pyplot as plt

    models = list(dict.fromkeys(record.model for record in records))
    providers = list(dict.fromkeys(record.provider for record in records))
    width = 0.8 / max(len(providers), 1)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.3 * len(models) + 2), 4.2))
    by_key = {(record.model, record.provider): record for record in records}
    for index, provider in enumerate(providers):
        xs, ys = [], []
        for position, model in enumerate(models):
            if (model, provider) in by_key:
                xs.append(position + (index - (len(providers) - 1) / 2) * width)
                ys.append(by_key[model, provider].rtf)
        bars = axes.bar(xs, ys, width=width, label=provider)
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.axhline(1.0, color="black", linestyle="--", linewidth=1)
    axes.set_xticks(range(len(models)), models, rotation=20, ha="right", fontsize=8)
    axes.set_ylabel("real-time factor (s of compute per s of audio)")
    axes.set_title("Latency per second of audio (lower is faster; dashed: real time)", fontsize=10)
    axes.legend(title="provider", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return figure


def speed_quality_scatter(result: Any) -> Figure:
    """Speed ratio to float32 against log-mel distance, one numbered point per candidate (the
    key beside the plot), the peer (published int8) and the chosen recipe marked
    (``parity.search.optimize.OptimizeResult``)."""
    from matplotlib import pyplot as plt

    figure, (axes, key) = plt.subplots(
        1, 2, figsize=(11, 5.5), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    lines = []
    for number, row in enumerate(result.rows, start=1):
        if row.error is not None or row.axes is None or not math.isfinite(row.speed_ratio):
            lines.append(f"{number:2d} {row.name}: failed")
            continue
        clean = row.cleaner_than(result.peer, result.floor)
        chosen = row.name == result.chosen
        axes.scatter(
            row.speed_ratio,
            row.aligned_mel,
            s=140 if chosen else 60,
            marker="*" if chosen else "o",
            color="#1e8449" if clean else "#7f8c8d",
            zorder=3,
        )
        axes.annotate(
            str(number),
            (row.speed_ratio, row.aligned_mel),
            fontsize=8,
            xytext=(5, 3),
            textcoords="offset points",
        )
        mark = " (chosen)" if chosen else ""
        lines.append(
            f"{number:2d} {row.name}{mark}\n   x{row.speed_ratio:.2f} time, log-mel "
            f"{row.aligned_mel:.3f}, MCD {row.axes.mcd_db:.1f} dB"
        )
    peer = result.peer
    axes.scatter(peer.speed_ratio, peer.aligned_mel, s=90, marker="D", color="#c0392b", zorder=3)
    axes.annotate(
        "published int8 (peer)",
        (peer.speed_ratio, peer.aligned_mel),
        fontsize=8,
        xytext=(6, -12),
        textcoords="offset points",
        color="#c0392b",
    )
    axes.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axes.text(1.0, axes.get_ylim()[1], " float32 speed", fontsize=7, va="top")
    axes.set_xlabel(f"time per second of audio / float32's ({result.provider}; left is faster)")
    axes.set_ylabel("aligned |Δ log-mel| to float32 (timing removed; lower is closer)")
    axes.set_title(
        f"int8 candidates for {result.target}: green = as clean as the peer, star = chosen",
        fontsize=10,
    )
    axes.grid(alpha=0.3)
    key.axis("off")
    key.text(0, 1, "\n".join(lines), fontsize=7, va="top", family="monospace")
    return figure


def run_speed_quality(
    qualities: Sequence[Any], ratios: Mapping[str, Mapping[str, float]], baseline: str
) -> Figure:
    """One run's variants (``VariantQuality``): time over ``baseline``'s (``ratios``: provider
    to variant to ratio, same run) against mean log-mel to float32; a variant that failed its
    quality gate is drawn as a red cross."""
    from matplotlib import pyplot as plt
    from matplotlib import ticker

    providers = list(ratios)
    figure, axes = plt.subplots(figsize=(8, 5))
    failures = 0
    for index, provider in enumerate(providers):
        marker, colour = "os^Dv"[index % 5], f"C{index}"
        axes.scatter([], [], marker=marker, color=colour, label=provider)  # legend entry
        ratio = ratios[provider]
        shown = sorted(
            (quality for quality in qualities if quality.variant in ratio),
            key=lambda quality: ratio[quality.variant],
        )
        for order, quality in enumerate(shown):
            x, y = ratio[quality.variant], quality.axes().aligned_mel
            failures += not quality
            axes.scatter(
                x,
                y,
                marker=marker if quality else "x",
                s=70,
                color=colour if quality else "#c0392b",
                zorder=3,
            )
            # Neighbours along x take turns above and below their point, so names stay apart.
            axes.annotate(
                quality.variant,
                (x, y),
                fontsize=7,
                xytext=(5, 4 if order % 2 == 0 else -11),
                textcoords="offset points",
            )
    if failures:
        axes.scatter([], [], marker="x", color="#c0392b", label="failed its quality gate")
    axes.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axes.text(1.0, 0.02, f" {baseline} speed", fontsize=7, transform=axes.get_xaxis_transform())
    # Log scale: x0.5 and x2 lie as far from float32, and the slow signed-int8 trap (x3 to
    # x4) does not squeeze the rest into a corner.
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"x{value:g}"))
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes.xaxis.set_major_locator(ticker.FixedLocator([0.25, 0.4, 0.6, 0.8, 1, 1.5, 2, 3, 4, 6]))
    axes.set_xlabel(f"time per second of audio / {baseline}'s, same run (left is faster)")
    axes.set_ylabel(f"aligned |Δ log-mel| to {baseline} (timing removed; lower is closer)")
    axes.set_title(
        "Speed against quality of this run's variants (red x: failed its gate)", fontsize=10
    )
    axes.legend(title="provider", fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def mel_comparison(mels: Mapping[str, np.ndarray], title: str, settings: Any) -> Figure:
    """Log-mel spectrograms (``mels``, made with ``settings``, ``parity.judge.metrics.MEL``) of
    a reference (the first entry) and each other model, with each one's difference to the
    reference beside it, on shared colour scales."""
    import numpy as np
    from matplotlib import pyplot as plt

    MEL = settings  # noqa: N806 - read as the constant it almost always is
    names = list(mels)
    frames = min(mel.shape[1] for mel in mels.values())
    seconds = frames * MEL.hop_length / MEL.sample_rate
    extent = (0.0, seconds, 0.0, float(MEL.n_mels))
    low = min(float(np.percentile(mel[:, :frames], 1)) for mel in mels.values())
    high = max(float(mel[:, :frames].max()) for mel in mels.values())
    rows = max(len(names) - 1, 1)
    figure, axes = plt.subplots(
        rows, 3, figsize=(13, 2.6 * rows + 0.6), squeeze=False, constrained_layout=True
    )
    reference = mels[names[0]][:, :frames]
    others = names[1:] or names[:1]

    def spectrogram(axis: Any, values: Any, span: tuple[float, float], cmap: str) -> Any:
        return axis.imshow(
            values,
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=span[0],
            vmax=span[1],
            cmap=cmap,
        )

    for row, name in enumerate(others):
        left, middle, right = axes[row]
        shown = spectrogram(left, reference, (low, high), "magma")
        left.set_title(names[0], fontsize=9)
        candidate = mels[name][:, :frames]
        spectrogram(middle, candidate, (low, high), "magma")
        distance = float(np.mean(np.abs(candidate - reference)))
        middle.set_title(f"{name} (mean |Δ| {distance:.2f})", fontsize=9)
        difference = spectrogram(right, candidate - reference, (-3.0, 3.0), "coolwarm")
        right.set_title(f"{name} minus {names[0]}", fontsize=9)
        for axis in (left, middle, right):
            axis.set_xlabel("time (s)", fontsize=8)
            axis.set_ylabel(f"mel band (of {MEL.n_mels})", fontsize=8)
            axis.tick_params(labelsize=7)
        figure.colorbar(shown, ax=[left, middle], label="ln mel power", shrink=0.9)
        figure.colorbar(difference, ax=right, label="Δ ln mel power (clipped ±3)", shrink=0.9)
    figure.suptitle(
        f"{title} — {MEL.sample_rate // 1000} kHz, n_fft {MEL.n_fft}, hop {MEL.hop_length}",
        fontsize=10,
    )
    return figure
