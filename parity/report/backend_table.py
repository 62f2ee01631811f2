"""One table of files by backend (cpu, wasm, webgpu), from ``parity compare --json`` runs.

``make webgpu`` runs ``parity compare`` on each file and provider into one folder, as
``FILE.PROVIDER.json`` (the staged check) and ``FILE.PROVIDER.walk.json`` (``--intermediate``);
a run that stopped leaves ``FILE.PROVIDER.err`` (its stderr) instead. Each cell holds the worst
figure over the requests: a table that averaged would hide the request that broke.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.core.errors import ParityError

__all__ = ["BackendCell", "load_cells", "render_cells"]

PROVIDER_ORDER = ("cpu", "wasm", "webgpu")


@dataclass(frozen=True)
class BackendCell:
    """One file on one backend: the staged check's worst figures and the walk's first module."""

    file: str
    provider: str
    requests: int
    durations: str  # "equal", or how many requests moved how many tokens
    forced_rms_rel: float | None  # the forced generator against PyTorch's, gain removed
    forced_mel: float | None  # the same frames as log-mel: the aligned sound distance
    hf_shift: float | None  # >6 kHz share, candidate minus PyTorch: static shows here
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
        return BackendCell(file, provider, 0, "not run", None, None, None, None, "not run", stopped)
    staged: list[dict[str, Any]] = json.loads(staged_path.read_text())
    walk_path = folder / f"{file}.{provider}.walk.json"
    walks: list[dict[str, Any]] = json.loads(walk_path.read_text()) if walk_path.is_file() else []
    return BackendCell(
        file=file,
        provider=provider,
        requests=len(staged),
        durations=_durations(staged),
        forced_rms_rel=_worst(r["forced"]["error"]["rms_rel"] for r in staged if _forced(r)),
        forced_mel=_worst(r["forced"]["mel_distance"] for r in staged if r.get("forced")),
        hf_shift=_worst(
            r["forced"]["hf_candidate"] - r["forced"]["hf_reference"]
            for r in staged
            if r.get("forced")
        ),
        free_mel=_worst(r["free"]["mel_distance"] for r in staged if r.get("free")),
        first_module=_first_module(walks),
    )


def _forced(result: dict[str, Any]) -> bool:
    return bool(result.get("forced") and result["forced"].get("error"))


def _worst(values: Any) -> float | None:
    found = [float(value) for value in values]
    return max(found, key=abs) if found else None


def _durations(staged: list[dict[str, Any]]) -> str:
    moved = [len(r["durations"]["moved"]) for r in staged if r.get("durations")]
    if not moved:
        return "not given"
    if not any(moved):
        return "equal"
    return f"moved in {sum(1 for m in moved if m)}/{len(moved)} ({max(moved)} tokens at most)"


def _first_module(walks: list[dict[str, Any]]) -> str:
    if not walks:
        return "not run"
    firsts = []
    for walk in walks:
        failing = [row for row in walk["rows"] if not row["within"]]
        firsts.append(failing[0]["module"] if failing else "none")
    return ", ".join(dict.fromkeys(firsts))


def render_cells(cells: list[BackendCell]) -> str:
    """The cells as one markdown table."""
    lines = [
        "| file | backend | durations | forced generator rms_rel | aligned log-mel | "
        ">6 kHz shift | free-running log-mel | first module out of tolerance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        if cell.stopped is not None:
            lines.append(f"| {cell.file} | {cell.provider} | stopped: {cell.stopped} ||||||")
            continue
        lines.append(
            f"| {cell.file} | {cell.provider} | {cell.durations} | {_g(cell.forced_rms_rel)} | "
            f"{_g(cell.forced_mel)} | {_g(cell.hf_shift, '+.4f')} | {_g(cell.free_mel)} | "
            f"{cell.first_module} |"
        )
    return "\n".join(lines) + "\n"


def _g(value: float | None, spec: str = ".2g") -> str:
    return "-" if value is None else format(value, spec)
