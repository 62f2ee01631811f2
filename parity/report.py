"""One report per run: every gate and figure as JSON, a Markdown summary, plots and WAVs.

``pytest --parity-report DIR`` writes it after the run; ``parity report DIR`` re-renders the
summary from ``report.json``, and ``parity report --compare OLD NEW`` lists what moved
between two runs beyond noise. Plots and sounds are aids to the numbers: one that fails to
be made is logged and left out, and never fails the run.
"""

from __future__ import annotations

import json
import logging
import math
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.cache import atomic_path, write_text_atomic
from parity.errors import ParityError
from parity.model import SAMPLE_RATE
from parity.reporting import to_jsonable
from parity.session import Measurement

__all__ = [
    "Change",
    "Gate",
    "Report",
    "compare_reports",
    "load_report",
    "render_comparison",
]

LOG = logging.getLogger("parity.report")
REPORT_FILE = "report.json"
SUMMARY_FILE = "summary.md"
FAILING = ("failed", "error", "xpassed")
SOUND_SECONDS = 4.0
BASELINE = "fp32"  # the model every variant's speed and quality is measured against
# Figures that move less than this share between two runs are noise: run-to-run timing on
# this machine drifts up to 29% in minima and 15% in medians (README, benchmark compare);
# quality figures are deterministic and do not move at all on the same inputs.
TIMING_NOISE = 0.30
QUALITY_NOISE = 0.05
_TIMING_WORDS = ("rtf", "seconds", "time", "latency", "speed")


@dataclass(frozen=True)
class Gate:
    """One test of the run: its outcome, why it failed, and the figures it recorded."""

    test: str
    outcome: str  # passed | failed | error | skipped | xfailed | xpassed
    seconds: float
    message: str | None = None
    figures: tuple[dict[str, Any], ...] = ()

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING


@dataclass(frozen=True)
class Report:
    """A run's gates in the order they ran, plus figures recorded outside any test."""

    gates: tuple[Gate, ...]
    figures: tuple[dict[str, Any], ...] = ()
    pictures: tuple[str, ...] = ()
    sounds: tuple[str, ...] = ()
    command: str = ""

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for gate in self.gates:
            counted[gate.outcome] = counted.get(gate.outcome, 0) + 1
        return counted

    def failures(self) -> list[Gate]:
        return [gate for gate in self.gates if gate.failing]

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "counts": self.counts(),
            "gates": [to_jsonable(gate) for gate in self.gates],
            "figures": list(self.figures),
            "pictures": list(self.pictures),
            "sounds": list(self.sounds),
        }

    def summary_markdown(self) -> str:
        """Short Markdown for a CI step summary or a pull-request comment."""
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.counts().items()))
        failures = self.failures()
        lines = ["# Kokoro parity report", "", f"`{self.command}`: {counts}.", ""]
        if failures:
            first = failures[0]
            lines += [f"**First failure:** `{first.test}`: {first.message or first.outcome}", ""]
        else:
            lines += ["**Every gate passed.**", ""]
        lines += ["| gate | outcome | s | figure or failure |", "|---|---|---|---|"]
        ordered = failures + [gate for gate in self.gates if not gate.failing]
        for gate in ordered:
            if gate.outcome == "skipped" and not gate.figures:
                continue
            detail = (
                gate.message if gate.failing else (gate.figures[-1]["line"] if gate.figures else "")
            )
            mark = {"passed": "pass", "xfailed": "xfail (known)"}.get(
                gate.outcome, gate.outcome.upper()
            )
            lines.append(f"| `{gate.test}` | {mark} | {gate.seconds:.1f} | {_cell(detail or '')} |")
        if self.pictures:
            lines += ["", "## Pictures", ""]
            lines += [f"![{Path(name).stem}]({name})" for name in self.pictures]
        if self.sounds:
            lines += ["", "## Listen", ""]
            lines += [f"- [{Path(name).stem}]({name})" for name in self.sounds]
        return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def figure_record(measurement: Measurement) -> dict[str, Any]:
    return {
        "section": measurement.section,
        "line": measurement.line,
        "test": measurement.test,
        "data": to_jsonable(measurement.data),
    }


def build_report(
    outcomes: Sequence[tuple[str, str, float, str | None]],
    measurements: Sequence[Measurement],
    command: str = "",
) -> Report:
    """Gates from (test, outcome, seconds, message), each with the figures it recorded."""
    by_test: dict[str | None, list[dict[str, Any]]] = {}
    for measurement in measurements:
        by_test.setdefault(measurement.test, []).append(figure_record(measurement))
    gates = tuple(
        Gate(test, outcome, seconds, message, tuple(by_test.pop(test, [])))
        for test, outcome, seconds, message in outcomes
    )
    loose = tuple(figure for figures in by_test.values() for figure in figures)
    return Report(gates, loose, command=command)


def write_report(
    report: Report,
    folder: Path,
    objects: Iterable[Any] = (),
    sounds: Mapping[str, np.ndarray] | None = None,
) -> Report:
    """Write ``report.json``, ``summary.md``, the plots ``objects`` allow and the WAVs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pictures = _draw_pictures(folder, list(objects), sounds or {})
    written = _write_sounds(folder, sounds or {})
    report = Report(report.gates, report.figures, tuple(pictures), tuple(written), report.command)
    write_text_atomic(folder / REPORT_FILE, json.dumps(report.to_json(), indent=2) + "\n")
    write_text_atomic(folder / SUMMARY_FILE, report.summary_markdown())
    return report


def _draw_pictures(folder: Path, objects: list[Any], sounds: Mapping[str, np.ndarray]) -> list[str]:
    from parity.bench import LatencyRecord
    from parity.optimize import OptimizeResult
    from parity.plots import (
        draw,
        latency_bars,
        mel_comparison,
        run_speed_quality,
        sensitivity_bars,
        speed_quality_scatter,
    )
    from parity.quality import VariantQuality
    from parity.sensitivity import SweepResult

    drawn = []
    if len(sounds) >= 2:
        title = "log-mel of float32 and each variant, same sentence"
        drawn.append(draw(mel_comparison, folder / "mel.png", dict(sounds), title))
    sweeps = [item for item in objects if isinstance(item, SweepResult)]
    for index, result in enumerate(sweeps):
        name = "sensitivity.png" if index == 0 else f"sensitivity-{index}.png"
        drawn.append(draw(sensitivity_bars, folder / name, result))
    records = [item for item in objects if isinstance(item, LatencyRecord)]
    if records:
        drawn.append(draw(latency_bars, folder / "latency.png", records))
    qualities = [item for item in objects if isinstance(item, VariantQuality)]
    timed = {record.model for record in records}
    if BASELINE in timed and any(quality.variant in timed for quality in qualities):
        scatter = folder / "speed-quality.png"
        drawn.append(draw(run_speed_quality, scatter, qualities, records, BASELINE))
    for item in objects:
        if isinstance(item, OptimizeResult):
            drawn.append(
                draw(speed_quality_scatter, folder / f"speed-quality-{item.target}.png", item)
            )
    return [path.name for path in drawn if path is not None]


def _write_sounds(folder: Path, sounds: Mapping[str, np.ndarray]) -> list[str]:
    """The first seconds of each waveform as 16-bit PCM WAV, at one shared gain."""
    written = []
    clips = {
        name: np.asarray(waveform, dtype=np.float64)[: int(SOUND_SECONDS * SAMPLE_RATE)]
        for name, waveform in sounds.items()
    }
    playable = {name: clip for name, clip in clips.items() if np.all(np.isfinite(clip))}
    for name in clips.keys() - playable.keys():
        LOG.warning("sound %s not written: the waveform is not finite (NaN or inf)", name)
    peak = max((float(np.max(np.abs(c))) for c in playable.values() if len(c)), default=0.0)
    gain = 0.9 / peak if peak > 0 else 1.0
    for name, clip in playable.items():
        target = folder / f"{_slug(name)}.wav"
        pcm = np.clip(clip * gain * 32767, -32768, 32767).astype("<i2")
        try:
            with atomic_path(target) as temporary, wave.open(str(temporary), "wb") as sink:
                sink.setnchannels(1)
                sink.setsampwidth(2)
                sink.setframerate(SAMPLE_RATE)
                sink.writeframes(pcm.tobytes())
        except OSError as error:  # a sample is an aid, like a plot
            LOG.warning("sound %s not written: %s", target, error)
            continue
        written.append(target.name)
    return written


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-") or "audio"


def load_report(folder: Path) -> Report:
    """Read a report folder's ``report.json``; one clear line if it is not one."""
    path = Path(folder) / REPORT_FILE
    try:
        document = json.loads(path.read_text("utf-8"))
        gates = tuple(
            Gate(g["test"], g["outcome"], g["seconds"], g.get("message"), tuple(g["figures"]))
            for g in document["gates"]
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ParityError(
            f"report: {path} is not a parity report ({type(error).__name__}: {error}); "
            "write one with pytest --parity-report DIR"
        ) from error
    return Report(
        gates,
        tuple(document.get("figures", ())),
        tuple(document.get("pictures", ())),
        tuple(document.get("sounds", ())),
        document.get("command", ""),
    )


# -- comparing two runs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A gate or figure that differs between two reports beyond noise."""

    test: str
    what: str  # "outcome" or the figure's key path
    old: Any
    new: Any
    worse: bool
    detail: str = field(default="")

    def line(self) -> str:
        verdict = "WORSE" if self.worse else "better"
        return (
            f"{verdict}: `{self.test}` {self.what}: {self.old} -> {self.new} {self.detail}".rstrip()
        )


def _numbers(value: Any, path: str = "") -> dict[str, float]:
    """Every finite number in a figure's data, by key path (booleans are not figures)."""
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found.update(_numbers(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_numbers(item, f"{path}[{index}]"))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        found[path] = float(value)
    return found


def _figures_of(gate: Gate) -> dict[str, float]:
    numbers: dict[str, float] = {}
    for index, figure in enumerate(gate.figures):
        for path, value in _numbers(figure.get("data", {})).items():
            numbers[f"{figure.get('section', index)}:{path}"] = value
    return numbers


def compare_reports(old: Report, new: Report) -> list[Change]:
    """Outcome changes first, then figures that moved beyond noise (timing 30%, quality 5%).

    Recorded figures are costs (errors, distances, losses, real-time factors): a rise is worse.
    """
    before = {gate.test: gate for gate in old.gates}
    changes: list[Change] = []
    for gate in new.gates:
        previous = before.get(gate.test)
        if previous is None:
            if gate.failing:
                changes.append(
                    Change(
                        gate.test, "outcome", "(new test)", gate.outcome, True, gate.message or ""
                    )
                )
            continue
        if previous.failing != gate.failing:
            changes.append(
                Change(
                    gate.test,
                    "outcome",
                    previous.outcome,
                    gate.outcome,
                    gate.failing,
                    gate.message or "",
                )
            )
    outcome_changes = len(changes)
    for gate in new.gates:
        previous = before.get(gate.test)
        if previous is None:
            continue
        old_figures, new_figures = _figures_of(previous), _figures_of(gate)
        for path in sorted(old_figures.keys() & new_figures.keys()):
            a, b = old_figures[path], new_figures[path]
            noise = (
                TIMING_NOISE
                if any(word in path.lower() for word in _TIMING_WORDS)
                else QUALITY_NOISE
            )
            scale = max(abs(a), abs(b))
            if scale > 1e-12 and abs(b - a) > noise * scale:
                changes.append(
                    Change(
                        gate.test,
                        path,
                        f"{a:.4g}",
                        f"{b:.4g}",
                        b > a,
                        f"({b / a - 1:+.0%})" if a else "",
                    )
                )
    figures = sorted(changes[outcome_changes:], key=lambda change: not change.worse)
    return changes[:outcome_changes] + figures


def render_comparison(changes: Sequence[Change], old: str, new: str) -> str:
    if not changes:
        return f"# {old} -> {new}\n\nNothing moved beyond noise.\n"
    worse = sum(change.worse for change in changes)
    lines = [
        f"# {old} -> {new}",
        "",
        f"{worse} worse, {len(changes) - worse} better beyond noise.",
        "",
    ]
    lines += [f"- {change.line()}" for change in changes]
    return "\n".join(lines) + "\n"
