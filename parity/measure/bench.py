"""Latency per second of audio (real-time factor) on ONNX Runtime CPU and real WebAssembly.

Providers:
- ``cpu``: ONNX Runtime's CPU provider with its default threads (one per core), or the
  run's ``--threads``.
- ``cpu-1t``: the same with one intra-op thread, sequential execution and every graph
  optimisation: the settings of onnxruntime-web's WebAssembly build on a page without
  cross-origin isolation. What it cannot copy is the instruction set (native AVX-512 VNNI
  here against WebAssembly's 128-bit SIMD), which is why ``wasm`` exists.
- ``wasm``: onnxruntime-web's WebAssembly build in Node.js (``parity.measure.wasm``), one thread.
- ``webgpu``: onnxruntime-web's WebGPU backend in headless Chromium
  (``parity.judge.browser_session``), timed in the page around ``session.run``. Each record
  names the adapter: on a software one (SwiftShader) the time is the CPU emulating a GPU, and
  says nothing about a GPU's; on a hardware adapter (``--webgpu-adapter hardware``) it is real.

Timings are ratios inside one run or pytest-benchmark comparisons with a saved run; no
absolute time is ever a gate.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore
from parity.core.spec import SAMPLE_RATE

__all__ = [
    "BENCH_PROVIDERS",
    "PROVIDERS",
    "WASM_THREADS",
    "LatencyRecord",
    "Provider",
    "TimedSession",
    "measure",
    "open_timed",
    "speed_ratios",
]

Provider = Literal["cpu", "cpu-1t", "wasm", "wasm-2t", "webgpu"]
# wasm: one thread, what a page without cross-origin isolation gets (most pages); wasm-2t: the
# threaded build on two threads, what a cross-origin-isolated page gets on this machine.
PROVIDERS: tuple[Provider, ...] = ("cpu", "cpu-1t", "wasm", "wasm-2t")
# What parity bench times: the above, which the op profile and the speed gates use too, and
# WebGPU, which only bench times (no gate times a GPU).
BENCH_PROVIDERS: tuple[Provider, ...] = (*PROVIDERS, "webgpu")
WASM_THREADS: dict[str, int] = {"wasm": 1, "wasm-2t": 2}


class TimedSession(Protocol):
    """A loaded model that synthesizes one request and says how long the inference took;
    ``note`` says what the time is of where that is not plain (a WebGPU adapter)."""

    note: str

    def time(self, request: KokoroInput) -> tuple[float, int]:
        """(seconds of inference, audio samples produced)."""
        ...

    def close(self) -> None: ...


class _OrtTimed:
    note = ""

    def __init__(self, path: Path, threads: int) -> None:
        from parity.judge.runners import OrtRunner

        self.runner = OrtRunner(path, threads=threads)

    def time(self, request: KokoroInput) -> tuple[float, int]:
        start = time.perf_counter()
        audio = self.runner.run(request, [self.runner.audio_name])[0]
        return time.perf_counter() - start, int(audio.size)

    def close(self) -> None:
        del self.runner


class _WasmTimed:
    note = ""

    def __init__(self, path: Path, threads: int) -> None:
        from parity.measure.wasm import WasmSession

        self.session = WasmSession(path, threads=threads)

    def time(self, request: KokoroInput) -> tuple[float, int]:
        timing = self.session.run(request)
        return timing.seconds, timing.samples

    def close(self) -> None:
        self.session.close()


class _BrowserTimed:
    def __init__(self, path: Path, provider: str) -> None:
        from parity.judge.browser_session import BrowserSession
        from parity.judge.runners import OrtRunner

        self.runner = OrtRunner(path, provider=provider)
        session = self.runner.session
        assert isinstance(session, BrowserSession)
        self.session = session
        adapter = session.adapter.describe() if session.adapter else provider
        software = session.adapter is not None and session.adapter.software
        self.note = f"{adapter}: the CPU emulating a GPU, not a GPU's time" if software else adapter

    def time(self, request: KokoroInput) -> tuple[float, int]:
        audio = self.runner.run(request, [self.runner.audio_name])[0]
        assert self.session.seconds is not None
        return self.session.seconds, int(audio.size)

    def close(self) -> None:
        self.session.close()


def open_timed(path: Path, provider: Provider) -> TimedSession:
    """Load ``path`` on ``provider`` (a ParityError says why a backend is unavailable)."""
    if provider == "cpu":
        return _OrtTimed(path, threads=0)
    if provider == "cpu-1t":
        return _OrtTimed(path, threads=1)
    if provider in WASM_THREADS:
        return _WasmTimed(path, WASM_THREADS[provider])
    if provider == "webgpu":
        return _BrowserTimed(path, provider)
    raise ParityError(f"bench: unknown provider {provider!r}; use {', '.join(BENCH_PROVIDERS)}")


@dataclass(frozen=True)
class LatencyRecord:
    """One model on one provider: median seconds per request and per second of audio."""

    model: str
    provider: str
    seconds: float  # median over the repeats
    audio_seconds: float
    size_bytes: int
    repeats: int
    spread: float  # (slowest - fastest) / median over the repeats
    fastest: float  # seconds of the fastest repeat: what speed ratios compare
    note: str = ""  # what the time is of, where not plain: a WebGPU adapter

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of compute per second of audio (below 1 is faster)."""
        return self.seconds / self.audio_seconds

    @property
    def fastest_rtf(self) -> float:
        """The real-time factor of the fastest repeat, which speed ratios compare."""
        return self.fastest / self.audio_seconds

    def line(self) -> str:
        return (
            f"{self.model:24s} {self.provider:7s} {self.seconds:7.3f} s for "
            f"{self.audio_seconds:5.2f} s of audio: RTF {self.rtf:.3f} "
            f"(±{self.spread:.0%} over {self.repeats}), {self.size_bytes / 1e6:.1f} MB"
            + (f" [{self.note}]" if self.note else "")
        )


class _Open:
    """Every model's session on one provider, open together so repeats can interleave."""

    def __init__(self, models: Mapping[str, Path], provider: Provider) -> None:
        self.sessions: dict[str, TimedSession] = {}
        try:
            for name, path in models.items():
                self.sessions[name] = open_timed(path, provider)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __enter__(self) -> dict[str, TimedSession]:
        return self.sessions

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for session in self.sessions.values():
            session.close()


def measure(
    models: Mapping[str, Path],
    provider: Provider,
    requests: Sequence[KokoroInput],
    *,
    repeats: int = 5,
    warmup: int = 1,
) -> list[LatencyRecord]:
    """Time every model on ``provider``, interleaved: each repeat runs all models in turn,
    so a change in machine load falls on all of them alike. Medians over ``repeats``."""
    if repeats < 1 or not requests:
        raise ParityError("bench: need at least one repeat and one request")
    seconds: dict[str, list[float]] = {name: [] for name in models}
    samples: dict[str, int] = {}
    notes: dict[str, str] = {}
    with _Open(models, provider) as sessions:
        notes = {name: session.note for name, session in sessions.items()}
        for round_ in range(warmup + repeats):
            for name, session in sessions.items():
                total, produced = 0.0, 0
                for request in requests:
                    spent, count = session.time(request)
                    total, produced = total + spent, produced + count
                if round_ >= warmup:
                    seconds[name].append(total)
                samples[name] = produced
    records = []
    for name, path in models.items():
        median = statistics.median(seconds[name])
        records.append(
            LatencyRecord(
                name,
                provider,
                median,
                samples[name] / SAMPLE_RATE,
                Path(path).stat().st_size,
                repeats,
                (max(seconds[name]) - min(seconds[name])) / median,
                min(seconds[name]),
                notes[name],
            )
        )
    return records


def machine_identity() -> dict[str, object]:
    """What a timing depends on besides the models: the CPU (model name and flags, which
    say AVX-512 or AMX), the core count and the runtime versions."""
    import hashlib
    import os
    import platform
    from importlib import metadata

    cpu: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "flags") and key.strip() not in cpu:
                cpu[key.strip()] = value.strip()
    except OSError:
        cpu["model name"] = platform.processor()
    return {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "cpu": cpu.get("model name", ""),
        "flags": hashlib.sha256(cpu.get("flags", "").encode()).hexdigest()[:16],
        "onnxruntime": metadata.version("onnxruntime"),
        "onnxruntime-web": _web_version(),
    }


def _web_version() -> str | None:
    import json

    from parity.measure.wasm import WEB_DIR

    lock = WEB_DIR / "package-lock.json"
    try:
        packages = json.loads(lock.read_text("utf-8"))["packages"]
        return str(packages["node_modules/onnxruntime-web"]["version"])
    except (OSError, ValueError, KeyError):
        return None


def measure_cached(
    models: Mapping[str, Path],
    provider: Provider,
    requests: Sequence[KokoroInput],
    *,
    repeats: int,
    runs: RunStore,
) -> list[LatencyRecord]:
    """``measure`` through the run store: the same files timed on the same machine and
    runtimes are not timed again (``--parity-rerun`` does; benchmarks always do)."""
    from parity.core.cache import content_digest
    from parity.core.memo import request_digest, source_digest

    parts = {
        "models": {name: content_digest(Path(path)) for name, path in models.items()},
        "provider": provider,
        "requests": [request_digest(request) for request in requests],
        "repeats": repeats,
        "machine": machine_identity(),
        "code": source_digest(("measure/bench.py", "measure/wasm.py", "judge/runners.py"), ()),
    }

    def compute() -> list[dict[str, object]]:
        from parity.core.jsonable import to_jsonable

        return [to_jsonable(r) for r in measure(models, provider, requests, repeats=repeats)]

    return [LatencyRecord(**record) for record in runs.record("latency", parts, compute)]


def speed_ratios(records: Sequence[LatencyRecord], baseline: str) -> dict[str, float]:
    """Each model's time per second of audio over ``baseline``'s, on the same provider and
    run, from each model's fastest repeat. On a shared host, load only ever adds time, and
    medians of 3 moved a 0.6x variant to 0.67x in one CI run (repeats spread 29-39%)."""
    by_name = {record.model: record for record in records}
    if baseline not in by_name:
        raise ParityError(f"bench: no record for the baseline model {baseline!r}")
    reference = by_name[baseline].fastest_rtf
    return {record.model: record.fastest_rtf / reference for record in records}


def record_dict(record: LatencyRecord) -> dict[str, object]:
    """One JSON record: the measured fields plus the real-time factor."""
    from parity.core.jsonable import to_jsonable

    return {**to_jsonable(record), "rtf": record.rtf}


def write_records(path: Path, records: Sequence[LatencyRecord]) -> None:
    """``path`` as a JSON list (atomically), and a chart of real-time factors beside it."""
    import json

    from parity.core.cache import write_text_atomic
    from parity.core.plots import draw, latency_bars

    write_text_atomic(path, json.dumps([record_dict(r) for r in records], indent=2) + "\n")
    draw(latency_bars, path.with_suffix(".png"), list(records))
