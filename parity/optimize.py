"""Recipe search: the int8 variant that runs fastest while sounding no worse than the peer.

Every candidate recipe is built (cached), heard on the same requests as float32 (length,
log-mel, noise floor, >6 kHz share) and timed against float32 and the peer (the published
int8) interleaved in one run on the target's provider. A candidate that fails to build or
run is kept in the table with its error. The choice is the fastest candidate at least as
clean as the peer (``parity.tolerances.CLEANER_THAN_PEER``); it is saved as a declarative
recipe under ``fixtures/recipes/`` so the same variant is rebuilt and gated on every commit.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from parity.bench import Provider, measure, speed_ratios
from parity.cache import write_text_atomic
from parity.errors import ParityError, first_line
from parity.inputs import KokoroInput
from parity.quality import hear_model
from parity.quantize import TRAINED_EXCLUDE_SCOPES, QuantBuild, QuantRecipe
from parity.reporting import to_jsonable
from parity.tolerances import CLEANER_THAN_PEER, INT8_VARIANTS

__all__ = [
    "CANDIDATES",
    "TARGETS",
    "CandidateResult",
    "OptimizeResult",
    "hear",
    "load_recipe",
    "search",
    "write_recipe",
]

Target = Literal["cpu", "wasm"]
TARGETS: dict[Target, Provider] = {"cpu": "cpu", "wasm": "wasm"}
_KEEP = TRAINED_EXCLUDE_SCOPES
_STATIC = QuantRecipe(mode="qdq", weight_type="int8", exclude_scopes=_KEEP)
_GEN = "/decoder/decoder/generator/"
# The generator's second upsampling stage: it works at the highest rate, next to the output.
_LATE_STAGE = ("resblocks.3/", "resblocks.4/", "resblocks.5/", "noise_convs.1/", "noise_res.1/")

# Each names one idea: the sign of the weights (ConvInteger's fast path wants uint8), the
# format (QDQ or QOperator), per-channel scales, the calibration method, and which layers
# stay float (the generator's activations span the widest range).
CANDIDATES: dict[str, QuantRecipe] = {
    "dynamic-uint8": QuantRecipe(exclude_scopes=_KEEP),
    "dynamic-int8-per-channel": QuantRecipe(
        weight_type="int8", per_channel=True, exclude_scopes=_KEEP
    ),
    "qdq": _STATIC,
    "qdq-per-channel": replace(_STATIC, per_channel=True),
    "qdq-percentile": replace(_STATIC, calibration="percentile"),
    "qdq-entropy": replace(_STATIC, calibration="entropy"),
    "qdq-generator-float": replace(_STATIC, exclude_scopes=(*_KEEP, "/decoder/decoder/generator/")),
    "qdq-late-generator-float": replace(
        _STATIC, exclude_scopes=(*_KEEP, *(f"{_GEN}{scope}" for scope in _LATE_STAGE))
    ),
    "qdq-late-resblocks-float": replace(
        _STATIC, exclude_scopes=(*_KEEP, *(f"{_GEN}{scope}" for scope in _LATE_STAGE[:3]))
    ),
    "qdq-last-resblock-float": replace(_STATIC, exclude_scopes=(*_KEEP, f"{_GEN}resblocks.5/")),
    "qdq-noise-path-float": replace(
        _STATIC, exclude_scopes=(*_KEEP, f"{_GEN}noise_convs", f"{_GEN}noise_res")
    ),
    "qdq-resblocks-float": replace(_STATIC, exclude_scopes=(*_KEEP, f"{_GEN}resblocks")),
    "qdq-conv-only": replace(_STATIC, op_types=("Conv",)),
    "qoperator-per-channel": replace(_STATIC, mode="qoperator", per_channel=True),
}
PEER = "published"


@dataclass(frozen=True)
class CandidateResult:
    """One candidate measured against float32: size, speed, and how it sounds."""

    name: str
    label: str
    size_ratio: float = float("nan")
    speed_ratio: float = float("nan")  # real-time factor over float32's, same run
    mean_mel: float = float("nan")
    floor_rise_db: float = float("nan")  # worst over the requests
    hf_ratio: float = float("nan")  # worst over the requests
    length_change: float = float("nan")  # worst |len / len(fp32) - 1|
    error: str | None = None

    def cleaner_than(self, peer: CandidateResult) -> bool:
        """At least as clean as ``peer`` on every measure, within the stated slack."""
        slack = CLEANER_THAN_PEER
        return (
            self.error is None
            and self.mean_mel <= peer.mean_mel + slack.mel
            and self.hf_ratio <= peer.hf_ratio + slack.hf_ratio
            and self.floor_rise_db <= peer.floor_rise_db + slack.floor_db
            and self.length_change <= slack.length_change
        )

    def line(self) -> str:
        if self.error is not None:
            return f"{self.name:26s} FAILED: {self.error}"
        speed = f"speed x{self.speed_ratio:.2f}" if np.isfinite(self.speed_ratio) else "speed -"
        return (
            f"{self.name:26s} {speed:11s}  size {self.size_ratio:.2f}x  "
            f"log-mel {self.mean_mel:.2f}  floor {self.floor_rise_db:+.1f} dB  "
            f">6 kHz x{self.hf_ratio:.2f}  length {self.length_change:.1%}"
        )


@dataclass(frozen=True)
class OptimizeResult:
    """The table of one search, the peer measured in the same run, and the choice."""

    target: str
    provider: str
    rows: tuple[CandidateResult, ...]
    peer: CandidateResult
    chosen: str | None

    def summary(self) -> str:
        choice = (
            self.chosen or "nothing (no candidate is faster than fp32 and as clean as the peer)"
        )
        return f"{self.target}: {len(self.rows)} candidates; chosen: {choice}"

    def write(self, folder: Path) -> None:
        """``optimize.json``, ``optimize.csv`` and ``optimize.png`` (speed vs quality)."""
        from parity.plots import draw, speed_quality_scatter

        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "optimize.json", json.dumps(to_jsonable(self), indent=2))
        table = io.StringIO()
        writer = csv.writer(table)
        fields = [f for f in CandidateResult.__dataclass_fields__ if f != "label"]
        writer.writerow([*fields, "cleaner_than_peer", "chosen"])
        for row in (*self.rows, self.peer):
            values = [getattr(row, f) for f in fields]
            writer.writerow([*values, row.cleaner_than(self.peer), row.name == self.chosen])
        write_text_atomic(folder / "optimize.csv", table.getvalue())
        draw(speed_quality_scatter, folder / "optimize.png", self)


def hear(
    name: str,
    label: str,
    path: Path,
    *,
    size_ratio: float,
    reference: Sequence[np.ndarray],
    requests: Sequence[KokoroInput],
) -> CandidateResult:
    """Run ``path`` on ``requests`` and measure it against float32's ``reference`` audio."""
    quality, _ = hear_model(
        name,
        path,
        reference=reference,
        requests=requests,
        size_ratio=size_ratio,
        tolerance=INT8_VARIANTS["published"],  # not gated here; the figures are what count
    )
    return CandidateResult(
        name,
        label,
        size_ratio,
        mean_mel=float(np.mean(quality.mel)),
        floor_rise_db=max(quality.floor_rise_db),
        hf_ratio=max(quality.hf_ratio),
        length_change=max(abs(x) for x in quality.length_change),
    )


def search(
    source: Path,
    peer: Path,
    target: Target,
    requests: Sequence[KokoroInput],
    build: Callable[[str, QuantRecipe], QuantBuild],
    *,
    candidates: dict[str, QuantRecipe] | None = None,
    repeats: int = 3,
    max_speed_ratio: float = 1.0,
    log: Callable[[str], None] = lambda line: None,
) -> OptimizeResult:
    """Build, hear and time every candidate; choose the fastest that is as clean as ``peer``
    and faster than float32 (its time ratio under ``max_speed_ratio``).

    ``build(name, recipe)`` makes the quantized model (the caller decides about caching and
    calibration); ``requests`` are what quality is judged on, the first one is timed.
    """
    from parity.runners import OrtRunner

    if target not in TARGETS:
        raise ParityError(f"optimize: unknown target {target!r}; use {', '.join(TARGETS)}")
    if not requests:
        raise ParityError("optimize: no requests to judge the candidates on")
    chosen_candidates = CANDIDATES if candidates is None else candidates
    fp32 = OrtRunner(source)
    reference = [fp32.infer(request).waveform for request in requests]
    del fp32
    size_fp32 = Path(source).stat().st_size
    heard: dict[str, CandidateResult] = {}
    paths: dict[str, Path] = {"fp32": Path(source), PEER: Path(peer)}
    heard[PEER] = hear(
        PEER,
        "kokoro-onnx int8",
        Path(peer),
        size_ratio=Path(peer).stat().st_size / size_fp32,
        reference=reference,
        requests=requests,
    )
    log(heard[PEER].line())
    for name, recipe in chosen_candidates.items():
        try:
            built = build(name, recipe)
            heard[name] = hear(
                name,
                recipe.label(),
                built.path,
                size_ratio=built.size_ratio,
                reference=reference,
                requests=requests,
            )
            paths[name] = built.path
        except Exception as error:  # a failed candidate is a finding, reported in the table
            heard[name] = CandidateResult(
                name, recipe.label(), error=f"{type(error).__name__}: {first_line(error, 200)}"
            )
        log(heard[name].line())
    provider = TARGETS[target]
    records = measure(paths, provider, requests[:1], repeats=repeats)
    ratios = speed_ratios(records, "fp32")
    rows = [
        replace(result, speed_ratio=ratios.get(name, float("nan")))
        for name, result in heard.items()
    ]
    peer_row = next(row for row in rows if row.name == PEER)
    ours = tuple(row for row in rows if row.name != PEER)
    clean = [
        row for row in ours if row.cleaner_than(peer_row) and row.speed_ratio < max_speed_ratio
    ]
    chosen = min(clean, key=lambda row: row.speed_ratio).name if clean else None
    return OptimizeResult(target, provider, ours, peer_row, chosen)


def write_recipe(path: Path, name: str, recipe: QuantRecipe, result: OptimizeResult) -> None:
    """Save the chosen recipe declaratively, with what it measured when chosen."""
    row = next(r for r in result.rows if r.name == name)
    document = {
        "name": name,
        "target": result.target,
        "recipe": to_jsonable(recipe),
        "measured": {"candidate": to_jsonable(row), "peer": to_jsonable(result.peer)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(document, indent=1) + "\n")


def load_recipe(path: Path) -> tuple[str, str, QuantRecipe]:
    """(name, target, recipe) of a saved recipe; one clear line when it cannot be read."""
    try:
        document: dict[str, Any] = json.loads(Path(path).read_text("utf-8"))
        raw = dict(document["recipe"])
        for key in ("op_types", "exclude_nodes", "exclude_scopes"):
            raw[key] = tuple(raw[key])
        return str(document["name"]), str(document["target"]), QuantRecipe(**raw)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ParityError(
            f"optimize: cannot read the recipe {path} ({type(error).__name__}: {error}); "
            "write it again with parity optimize"
        ) from error
