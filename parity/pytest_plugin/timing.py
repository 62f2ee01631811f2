"""When a run may time things, and the models and sessions the latency benchmarks time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from parity.builders.quantize import QuantBuild
    from parity.builders.voices import TrainedVoices
    from parity.builders.weights import DequantizedModel
    from parity.measure.bench import Provider, TimedSession


# Any of these asks pytest-benchmark for a timed run; without one, our latency benchmarks
# skip, so the everyday test command stays inside CI's time.
BENCHMARK_REQUESTS = (
    "benchmark_enable",
    "benchmark_only",
    "benchmark_save",
    "benchmark_autosave",
    "benchmark_json",
    "benchmark_compare",
)


XDIST_TIMING = "no timing under pytest-xdist: its workers share the CPU"


TIMING_FIXTURES = ("require_timing", "parity_benchmarking")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what times something ``timing``, so a parallel run can leave it out by marker
    (``-m "not timing"``) and a serial one run only it (``-m timing``)."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in TIMING_FIXTURES):
            item.add_marker(pytest.mark.timing)


@pytest.fixture(scope="session")
def parity_timing() -> str | None:
    """None when this process may time things, else why not (pytest-xdist workers)."""
    return XDIST_TIMING if os.environ.get("PYTEST_XDIST_WORKER") else None


@pytest.fixture(scope="session")
def parity_benchmarking(pytestconfig: pytest.Config, parity_timing: str | None) -> str | None:
    """None when latency benchmarks should run, else the reason they skip."""
    if parity_timing is not None:
        return parity_timing
    benchmark_session = getattr(pytestconfig, "_benchmarksession", None)
    if benchmark_session is None:
        return "pytest-benchmark is not active"
    if getattr(benchmark_session, "disabled", False):
        # pytest-benchmark turns timing off under xdist, where workers share the CPU
        return "pytest-benchmark is disabled in this run (--benchmark-disable or xdist)"
    if not any(pytestconfig.getoption(name, None) for name in BENCHMARK_REQUESTS):
        return "latency benchmarks run with --benchmark-enable, --benchmark-autosave or similar"
    return None


@pytest.fixture(scope="session")
def require_timing(
    parity_timing: str | None, parity_benchmarking: str | None
) -> Callable[[str], None]:
    """``require_timing(provider)`` skips, with the reason, unless this run may time it: the
    CPU on every run, the others when benchmarking, nothing on xdist workers, and WebAssembly
    only where Node.js and onnxruntime-web are installed."""

    def require(provider: str) -> None:
        if parity_timing is not None:
            pytest.skip(parity_timing)
        if provider != "cpu" and parity_benchmarking is not None:
            pytest.skip(f"{provider}: {parity_benchmarking}")
        if provider.startswith("wasm"):
            from parity.measure.wasm import wasm_unavailable

            reason = wasm_unavailable()
            if reason is not None:
                pytest.skip(reason)

    return require


@pytest.fixture(scope="session")
def bench_models(
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    trained_variant: Callable[..., QuantBuild],
) -> Callable[[str], Path]:
    """``path(name)``: the trained float32 model (``fp32``), the published int8
    (``published``) or one of ``parity.builders.quantize.TRAINED_VARIANTS``, built on first use."""
    model, _ = kokoro_trained

    def path(name: str) -> Path:
        if name == "fp32":
            return model.path
        if name == "published":
            return model.int8_path
        return trained_variant(name).path

    return path


@pytest.fixture(scope="session")
def timed_session(bench_models: Callable[[str], Path]) -> Iterator[Callable[..., TimedSession]]:
    """``open(name, provider)``: a loaded model for timing, kept open for the session. A
    backend that is not installed (Node.js, onnxruntime-web) skips with what to install."""
    from parity.measure.bench import open_timed
    from parity.measure.wasm import wasm_unavailable

    opened: dict[tuple[str, str], TimedSession] = {}

    def open_(name: str, provider: Provider) -> TimedSession:
        reason = wasm_unavailable() if provider.startswith("wasm") else None
        if reason is not None:
            pytest.skip(reason)
        if (name, provider) not in opened:
            opened[name, provider] = open_timed(bench_models(name), provider)
        return opened[name, provider]

    yield open_
    for session in opened.values():
        session.close()
