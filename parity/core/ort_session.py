"""ONNX Runtime CPU sessions, with one clear error line for a missing or broken file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parity.core.errors import ParityError, first_line

__all__ = [
    "LEVELS",
    "SessionWorkaround",
    "effective_threads",
    "open_session",
    "require_onnx_file",
    "use_threads",
    "use_workaround",
]

# Optimization levels by the names the harness uses, lowest first, with ORT's enum names.
LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# The run's ``--threads`` (``--parity-threads``): what a session asking for ORT's default (0)
# gets instead. A timing that pins its own count (cpu-1t: 1) keeps it.
_RUN_THREADS = [0]


def use_threads(threads: int) -> None:
    """Give every session of this process that asks for ORT's default ``threads`` instead."""
    if threads < 0:
        raise ParityError(f"threads: {threads} is negative; give 0 (ORT's default) or more")
    _RUN_THREADS[0] = threads


def effective_threads(threads: int) -> int:
    """The intra-op threads a session asking for ``threads`` runs with (0: ORT's default)."""
    return threads or _RUN_THREADS[0]


@dataclass(frozen=True)
class SessionWorkaround:
    """Session options that keep ONNX Runtime from crashing on one file
    (``parity.core.session_probe`` finds them): optimizers to disable, or a lower level."""

    disabled_optimizers: tuple[str, ...] = ()
    level: str | None = None  # the highest optimization level the file opens at

    def describe(self) -> str:
        if self.disabled_optimizers:
            return f"with {', '.join(self.disabled_optimizers)} disabled"
        return f"at optimization level {self.level}"


# Per file (resolved path): what every session opened on it must use; in-memory edits of the
# file (forced timing, exposed values) are opened under its path and get the same.
_WORKAROUNDS: dict[str, SessionWorkaround] = {}


def use_workaround(path: Path, workaround: SessionWorkaround) -> None:
    """Open every later session on ``path`` (or on bytes named by it) with ``workaround``."""
    _WORKAROUNDS[str(Path(path).resolve())] = workaround


def require_onnx_file(path: Path) -> None:
    """One clear line for a model path that names no file."""
    if not path.is_file():
        raise ParityError(f"{path}: no such ONNX file; export one with `parity export -o {path}`")


def open_session(
    path: Path,
    *,
    threads: int = 0,
    optimization: str = "all",
    model_bytes: bytes | None = None,
    profile_prefix: str | None = None,
) -> object:
    """An ONNX Runtime CPU session, with one clear error line for a missing or broken file.

    ``model_bytes`` loads a transformed model held in memory; ``path`` then names it in errors.
    ``profile_prefix`` turns ORT's profiler on; ``end_profiling()`` then writes its JSON there.
    """
    import onnxruntime as ort

    path = Path(path)
    if model_bytes is None:
        require_onnx_file(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = effective_threads(threads)
    # ORT's workers go on spinning after run() returns, so the next session's run (bench and
    # the speed gates interleave models) shares the cores with them. Measured 2026-12-06, two
    # threads on this 2-core machine, one 128->128 k11 conv: the int8 GEMM form 26 ms alone,
    # 52 ms interleaved with a float session, 29 ms with spinning stopped at the end of each
    # run; the float conv 66, 90 and 66 ms. On the whole model (held-storm, 1.6 to 2.4 s runs)
    # the ratios moved by under 1%. Within a run the workers still spin, as a server with one
    # session has them.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    workaround = _WORKAROUNDS.get(str(path.resolve()), SessionWorkaround())
    order = list(LEVELS)
    if workaround.level is not None and order.index(workaround.level) < order.index(optimization):
        optimization = workaround.level
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[optimization])
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    try:
        source = model_bytes if model_bytes is not None else str(path)
        return ort.InferenceSession(
            source,
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(workaround.disabled_optimizers),
        )
    except Exception as error:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...)
        raise ParityError(
            f"{path}: ONNX Runtime cannot load it ({type(error).__name__}: "
            f"{first_line(error, 200)}); "
            "if it is truncated or corrupt, export it again"
        ) from error
