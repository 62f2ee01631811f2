"""Whether ONNX Runtime crashes while it builds a CPU session for a file, found in a child
process: a file that kills ORT gets one line, and a session that opens, instead of taking the
harness down with it.

Measured 2026-12-06: ORT 1.32's CPU provider segfaults building an ``ORT_ENABLE_ALL`` session
(its default) for the trained float16 file in kokoro-onnx's layout (``make webgpu``); with only
``NchwcTransformer`` disabled it opens, as it does at ``ORT_ENABLE_EXTENDED``. A native crash
cannot be caught in the process that has it, so each file a user brings is opened once in a
child first, and the answer is kept by the file's content digest and ORT's version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from parity.core.cache import content_digest, write_text_atomic
from parity.core.errors import ParityError
from parity.core.ort_session import LEVELS, SessionWorkaround, use_workaround

__all__ = ["SessionProbe", "probe_cpu_session"]

# The child builds the session as ``open_session`` does (the level and the disabled
# optimizers are its arguments) and exits; one thread, as graph optimization uses none.
_CHILD = """
import sys
import onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, sys.argv[2])
ort.InferenceSession(
    sys.argv[1], options, providers=["CPUExecutionProvider"], disabled_optimizers=sys.argv[3:]
)
"""
# Tried in order after a crash at ORT_ENABLE_ALL: the optimizer the measured crash is in
# (so the file keeps every other optimization), then the lower levels.
LADDER = (
    SessionWorkaround(disabled_optimizers=("NchwcTransformer",)),
    SessionWorkaround(level="extended"),
    SessionWorkaround(level="basic"),
)


@dataclass(frozen=True)
class SessionProbe:
    """What building a CPU session for ``path`` did: ``crash`` names the signal that ended it
    at ``ORT_ENABLE_ALL`` (None: it opened, or raised an error the session itself reports),
    and ``workaround`` the first options on ``LADDER`` that opened it."""

    path: Path
    runtime: str
    crash: str | None = None
    workaround: SessionWorkaround | None = None

    def finding(self) -> str | None:
        """One line for the run's output where ORT crashed, else None."""
        if self.crash is None or self.workaround is None:
            return None
        return (
            f"{self.path.name}: ONNX Runtime {self.runtime} crashes ({self.crash}) building a "
            f"CPU session at ORT_ENABLE_ALL, its default; it opens {self.workaround.describe()}, "
            "and parity judges it so. A deployment with ORT's default options will crash on it: "
            "set the same there (disabled_optimizers or graph_optimization_level)"
        )


def probe_cpu_session(path: Path, cache_root: Path) -> SessionProbe:
    """Build a CPU session for ``path`` in a child process, and down ``LADDER`` if it crashes;
    every later ``open_session`` on the file uses the workaround found. One line if every
    rung crashes. The answer is kept under ``cache_root`` by content digest and ORT version."""
    path = Path(path)
    runtime = metadata.version("onnxruntime")
    # Keyed by what decides the answer: the file, ORT, and the child and ladder that ask.
    asked = hashlib.sha256(f"{_CHILD}{LADDER}".encode()).hexdigest()[:8]
    memo = cache_root / "session-probes" / f"{content_digest(path)[:24]}-{runtime}-{asked}.json"
    if memo.is_file():
        stored = json.loads(memo.read_text(encoding="utf-8"))
        crash, rung = stored["crash"], stored["rung"]
    else:
        crash, rung = _child_crash(path, "all", ()), None
        if crash is not None:
            rung = next(
                (
                    index
                    for index, workaround in enumerate(LADDER)
                    if _child_crash(path, workaround.level or "all", workaround.disabled_optimizers)
                    is None
                ),
                -1,
            )
        with contextlib.suppress(OSError):  # a read-only cache only costs the next run a probe
            write_text_atomic(memo, json.dumps({"crash": crash, "rung": rung}))
    if crash is not None and rung == -1:
        raise ParityError(
            f"{path}: ONNX Runtime {runtime} crashes ({crash}) building a CPU session for it at "
            "every optimization level; report it to ONNX Runtime with the file"
        )
    probe = SessionProbe(path, runtime, crash, None if rung is None else LADDER[rung])
    if probe.workaround is not None:
        use_workaround(path, probe.workaround)
    return probe


def _child_crash(path: Path, level: str, disabled: tuple[str, ...]) -> str | None:
    """The signal that ended a child building the session, or None if it exited (opened, or
    raised: an error the in-process session gives its own line)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), LEVELS[level], *disabled],
        capture_output=True,
        check=False,
    )
    if done.returncode >= 0:
        return None
    try:
        return signal.Signals(-done.returncode).name
    except ValueError:
        return f"signal {-done.returncode}"
