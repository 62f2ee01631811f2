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
import re
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.builders.model import SAMPLE_RATE
from parity.core.cache import atomic_path, write_text_atomic
from parity.core.errors import ParityError
from parity.core.jsonable import to_jsonable
from parity.report.session import Measurement

__all__ = [
    "Change",
    "Gate",
    "Report",
    "compare_reports",
    "load_report",
    "render_comparison",
]

LOG = logging.getLogger("parity.report.run_report")
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
        lines += [_row(*row) for row in _table(failures, self.gates)]
        if self.pictures:
            lines += ["", "## Pictures", ""]
            lines += [f"![{Path(name).stem}]({name})" for name in self.pictures]
        if self.sounds:
            lines += ["", "## Listen", ""]
            lines += [f"- [{Path(name).stem}]({name})" for name in self.sounds]
        return "\n".join(lines) + "\n"


def _mark(outcome: str) -> str:
    return {"passed": "pass", "xfailed": "xfail (known)"}.get(outcome, outcome.upper())


def _table(failures: list[Gate], gates: Sequence[Gate]) -> list[tuple[str, str, float, str]]:
    """(test, mark, seconds, detail) rows: failures first, then the rest in run order.

    A passing gate shows its last figure (its judgement), a known failure its reason;
    passing cases of one test that recorded no figure share a row, to keep the table short.
    """
    rows = [(g.test, _mark(g.outcome), g.seconds, g.message or "") for g in failures]
    quiet: dict[str, list[Gate]] = {}
    for gate in gates:
        if gate.outcome == "passed" and not gate.figures:
            quiet.setdefault(gate.test.split("[", 1)[0], []).append(gate)
    for gate in gates:
        if gate.failing or (gate.outcome == "skipped" and not gate.figures):
            continue
        base = gate.test.split("[", 1)[0]
        group = quiet.get(base, [])
        if len(group) > 1 and gate in group:
            if gate is group[0]:
                cases = ", ".join(g.test[len(base) + 1 : -1] for g in group)
                seconds = sum(g.seconds for g in group)
                rows.append((f"{base}[...]", f"pass x{len(group)}", seconds, cases))
            continue
        detail = gate.figures[-1]["line"] if gate.figures else (gate.message or "")
        rows.append((gate.test, _mark(gate.outcome), gate.seconds, detail))
    return rows


def _row(test: str, mark: str, seconds: float, detail: str) -> str:
    return f"| `{test}` | {mark} | {seconds:.1f} | {_cell(detail)} |"


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
    spoken: str | None = None,
) -> Report:
    """Write ``report.json``, ``summary.md``, the plots ``objects`` allow and the WAVs
    (``sounds``: one waveform per model, all speaking the request named ``spoken``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pictures = _draw_pictures(folder, list(objects), sounds or {}, spoken)
    written = _write_sounds(folder, sounds or {})
    report = Report(report.gates, report.figures, tuple(pictures), tuple(written), report.command)
    write_text_atomic(folder / REPORT_FILE, json.dumps(report.to_json(), indent=2) + "\n")
    write_text_atomic(folder / SUMMARY_FILE, report.summary_markdown())
    return report


def _draw_pictures(
    folder: Path, objects: list[Any], sounds: Mapping[str, np.ndarray], spoken: str | None
) -> list[str]:
    from parity.core.plots import (
        draw,
        latency_bars,
        run_speed_quality,
        sensitivity_bars,
        speed_quality_scatter,
    )
    from parity.judge.quality import VariantQuality
    from parity.measure.bench import LatencyRecord, speed_ratios
    from parity.search.optimize import OptimizeResult
    from parity.search.sensitivity import SweepResult

    drawn = []
    if len(sounds) >= 2:
        title = f"log-mel of each model against {next(iter(sounds))}: {spoken or 'one request'}"
        drawn.append(draw(_mel_figure, folder / "mel.png", sounds, title))
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
        providers = dict.fromkeys(record.provider for record in records)
        ratios = {
            provider: speed_ratios([r for r in records if r.provider == provider], BASELINE)
            for provider in providers
        }
        drawn.append(draw(run_speed_quality, scatter, qualities, ratios, BASELINE))
    for item in objects:
        if isinstance(item, OptimizeResult):
            drawn.append(
                draw(speed_quality_scatter, folder / f"speed-quality-{item.target}.png", item)
            )
    return [path.name for path in drawn if path is not None]


def _mel_figure(sounds: Mapping[str, np.ndarray], title: str) -> Any:
    """The log-mel comparison of ``sounds``; inside ``draw``, so a bad waveform costs only the
    picture."""
    from parity.core.plots import mel_comparison
    from parity.judge.metrics import MEL, log_mel

    mels = {name: log_mel(waveform) for name, waveform in sounds.items()}
    return mel_comparison(mels, title, MEL)


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
