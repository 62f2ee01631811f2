"""One table of files by backend (cpu, wasm, webgpu), from ``parity compare --json`` runs.

``make webgpu`` runs ``parity compare`` on each file and provider into one folder, as
``FILE.PROVIDER.json`` (the staged check of a float file, or the four-axis verdict of a
quantized one) and ``FILE.PROVIDER.walk.json`` (``--intermediate``); a run that stopped leaves
``FILE.PROVIDER.err`` (its stderr) instead. Each cell holds the worst figure over the
requests: a table that averaged would hide the request that broke.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.core.errors import ParityError

__all__ = ["BackendCell", "load_cells", "render_cells"]

PROVIDER_ORDER = (
    "cpu",
    "wasm",
    "webgpu",
    "webgpu-dawn",
    "webgpu-kokoro-js",
    "webgpu-dawn-kokoro-js",
)
# What a cell says of a figure from audio that was not finite (inf or NaN samples).
NOT_FINITE = "not finite"


@dataclass(frozen=True)
class BackendCell:
    """One file on one backend: the staged check's worst figures and the walk's first module."""

    file: str
    provider: str
    requests: int
    durations: str  # "equal", or how many requests moved how many tokens
    forced_rms_rel: float | None  # the forced generator against PyTorch's, gain removed
    aligned_mel: float | None  # log-mel on aligned frames (forced generator / forced timing)
    static: str  # >6 kHz share against the reference (and the noise floor's rise, int8)
    free_mel: float | None  # free-running log-mel (chaos and drift together)
    first_module: str  # first module over the walk's tolerance, "none", or "not run"
    stopped: str | None = None  # the error line of a run that did not finish


def load_cells(folder: Path) -> list[BackendCell]:
    """Every ``FILE.PROVIDER`` run in ``folder``, in file order then cpu, wasm, webgpu."""
    if not folder.is_dir():
        raise ParityError(f"{folder}: no such folder; run `make webgpu` first")
    runs = {
        (parts[0], parts[1])
        for path in folder.iterdir()
        if path.suffix in (".json", ".err") and len(parts := path.name.split(".")) >= 3
    }
    if not runs:
        raise ParityError(f"{folder}: no FILE.PROVIDER.json runs; run `make webgpu` first")
    cells = [_cell(folder, file, provider) for file, provider in runs]
    return sorted(cells, key=lambda c: (c.file, _provider_rank(c.provider)))


def _provider_rank(provider: str) -> int:
    return PROVIDER_ORDER.index(provider) if provider in PROVIDER_ORDER else len(PROVIDER_ORDER)


def _cell(folder: Path, file: str, provider: str) -> BackendCell:
    staged_path = folder / f"{file}.{provider}.json"
    if not staged_path.is_file():
        error = folder / f"{file}.{provider}.err"
        lines = error.read_text().strip().splitlines() if error.is_file() else []
        stopped = lines[-1].removeprefix("parity: error: ") if lines else "no output"
        return BackendCell(file, provider, 0, "not run", None, None, "", None, "not run", stopped)
    staged: list[dict[str, Any]] = json.loads(staged_path.read_text())
    walk_path = folder / f"{file}.{provider}.walk.json"
    walks: list[dict[str, Any]] = json.loads(walk_path.read_text()) if walk_path.is_file() else []
    if staged and "variant" in staged[0]:
        return _quantized_cell(file, provider, staged[0], _first_module(walks))
    hf = _worst(_hf_change(r["forced"]) for r in staged if r.get("forced"))
    return BackendCell(
        file=file,
        provider=provider,
        requests=len(staged),
        durations=_durations(staged),
        forced_rms_rel=_worst(r["forced"]["error"]["rms_rel"] for r in staged if _forced(r)),
        aligned_mel=_worst(r["forced"]["mel_distance"] for r in staged if r.get("forced")),
        static="-" if hf is None else f">6 kHz {hf:+.4f}" if math.isfinite(hf) else NOT_FINITE,
        free_mel=_worst(r["free"]["mel_distance"] for r in staged if r.get("free")),
        first_module=_first_module(walks),
    )


def _quantized_cell(file: str, provider: str, quality: dict[str, Any], first: str) -> BackendCell:
    """The four-axis verdict's worst request: timing forced to the reference's durations."""
    moved = max(quality["moved_tokens"], default=0.0)
    floor = _worst(quality["floor_rise_db"])
    hf = _worst(quality["hf_ratio"])
    return BackendCell(
        file=file,
        provider=provider,
        requests=len(quality["requests"]),
        durations="equal" if not moved else f"{moved:.0%} of tokens moved (then forced)",
        forced_rms_rel=None,
        aligned_mel=_worst(quality["aligned_mel"]),
        static=_static(floor, hf),
        free_mel=_worst(quality["mel"]),
        first_module=first,
    )


def _static(floor: float | None, hf: float | None) -> str:
    if floor is None or hf is None:
        return "-"
    if not (math.isfinite(floor) and math.isfinite(hf)):
        return NOT_FINITE
    return f"floor {floor:+.2f} dB, >6 kHz x{hf:.2f}"


def _hf_change(forced: dict[str, Any]) -> float:
    """The share above 6 kHz, the file's minus PyTorch's; NaN where the file's audio was not
    finite (its share is then recorded as None)."""
    candidate, reference = forced.get("hf_candidate"), forced.get("hf_reference")
    return float("nan") if candidate is None or reference is None else candidate - reference


def _forced(result: dict[str, Any]) -> bool:
    return bool(result.get("forced") and result["forced"].get("error"))


def _worst(values: Any) -> float | None:
    """The figure furthest from zero; a request whose figure is not finite (None in the JSON,
    which has no inf) is the worst."""
    found = [float("nan") if value is None else float(value) for value in values]
    broken = [value for value in found if not math.isfinite(value)]
    return broken[0] if broken else max(found, key=abs) if found else None


def _durations(staged: list[dict[str, Any]]) -> str:
    given = [r for r in staged if r.get("durations")]
    moved = [len(r["durations"]["moved"]) for r in given]
    if not moved:
        return "not given"
    if not any(moved):
        return "equal"
    # A move the check excused (within the tolerance's margin of a rounding boundary): the rest
    # of that request was judged with timing forced.
    excused = sum(bool(r.get("timing_forced")) for r in given)
    at_boundary = f"; {excused} at a rounding boundary, then forced" if excused else ""
    count = sum(1 for m in moved if m)
    most = max(moved)
    tokens = "token" if most == 1 else "tokens"
    return f"moved in {count}/{len(moved)} ({most} {tokens} at most{at_boundary})"


def _first_module(walks: list[dict[str, Any]]) -> str:
    """The walks' first modules out, and where ``parity compare`` replayed one op by op (on
    a browser provider), the op types out in it."""
    if not walks:
        return "not run"
    firsts, ops = [], []
    for walk in walks:
        failing = [row for row in walk["rows"] if not row["within"]]
        if "scope" in walk:  # an op replay (parity.judge.op_replay) of the first module out
            ops.append(", ".join(sorted({row["op_type"] for row in failing})) or "none out")
            continue
        firsts.append(failing[0]["module"] if failing else "none")
    found = ", ".join(dict.fromkeys(firsts))
    return found + (f" (ops: {'; '.join(dict.fromkeys(ops))})" if ops else "")


def render_cells(cells: list[BackendCell]) -> str:
    """The cells as one markdown table."""
    lines = [
        "| file | backend | durations | forced generator rms_rel | aligned log-mel | "
        "static | free-running log-mel | first module out of tolerance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        if cell.stopped is not None:
            lines.append(f"| {cell.file} | {cell.provider} | stopped: {cell.stopped} ||||||")
            continue
        lines.append(
            f"| {cell.file} | {cell.provider} | {cell.durations} | {_g(cell.forced_rms_rel)} | "
            f"{_g(cell.aligned_mel)} | {cell.static} | {_g(cell.free_mel)} | "
            f"{cell.first_module} |"
        )
    return "\n".join(lines) + "\n"


def _g(value: float | None, spec: str = ".2g") -> str:
    if value is None:
        return "-"
    return format(value, spec) if math.isfinite(value) else NOT_FINITE
