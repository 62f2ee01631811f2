"""One report per run: every gate and figure as JSON, a Markdown summary, plots and WAVs.

``pytest --parity-report DIR`` writes it after the run; ``parity report DIR`` re-renders the
summary from ``report.json`` (``parity.report.run_diff`` lists what moved between two of
them). Plots and sounds are aids to the numbers: one that fails to
be made is logged and left out, and never fails the run.
"""

from __future__ import annotations

import json
import logging
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.cache import atomic_path, write_text_atomic
from parity.core.errors import ParityError
from parity.core.jsonable import to_jsonable
from parity.core.spec import BASELINE, SAMPLE_RATE
from parity.report.session import Measurement

__all__ = ["Gate", "Report", "build_report", "load_report", "write_report"]

LOG = logging.getLogger("parity.report.run_report")
REPORT_FILE = "report.json"
SUMMARY_FILE = "summary.md"
FAILING = ("failed", "error", "xpassed")
SOUND_SECONDS = 4.0


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

    def skipped(self) -> list[Gate]:
        return [gate for gate in self.gates if gate.outcome == "skipped"]

    def verdict_line(self) -> str:
        """Passed, failed and skipped gates counted; "every gate passed" only when none was
        skipped, since a skipped gate judged nothing."""
        counts = self.counts()
        failed = sum(counts.get(outcome, 0) for outcome in FAILING)
        passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
        tally = f"{passed} passed, {failed} failed, {skipped} skipped"
        if failed:
            return f"**{tally}.**"
        if skipped:
            return f"**{tally}: no gate failed, but {skipped} did not run (listed below).**"
        return f"**{tally}: every gate passed.**"

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
        lines += [self.verdict_line(), ""]
        if failures:
            first = failures[0]
            lines += [f"**First failure:** `{first.test}`: {first.message or first.outcome}", ""]
        lines += ["| gate | outcome | s | figure or failure |", "|---|---|---|---|"]
        lines += [_row(*row) for row in _table(failures, self.gates)]
        if self.skipped():
            lines += ["", "## Skipped: these gates judged nothing", ""]
            lines += [f"- `{g.test}`: {g.message or 'no reason given'}" for g in self.skipped()]
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
