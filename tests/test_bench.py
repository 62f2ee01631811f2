"""Latency of the trained model's variants on ONNX Runtime CPU and real WebAssembly.

``pytest -k bench --benchmark-autosave`` records a run; ``--benchmark-compare
--benchmark-compare-fail=median:10%`` fails on a slower commit. Without a ``--benchmark-*``
flag the timed cases leave the run (deselected: they assert no time), and the speed gates
(ratios to float32 inside one run, and the integer kernels each variant ran) run on every
provider, every run; WebAssembly without Node.js stops the run with one line unless it goes
``--parity-without=node``.
"""

from __future__ import annotations

import pytest
from trained_gates import assert_speed_within_bounds

from parity.core.spec import SAMPLE_RATE
from parity.judge.variant_registry import VARIANTS
from parity.measure.bench import PROVIDERS

MODELS = ("fp32", *(entry.name for entry in VARIANTS))
# The landscape variants' ratios are gated in test_int8_trap (make test): timing the trap here
# would cost the main job about 30 s of a variant nobody ships.
GATED = ("fp32", *(entry.name for entry in VARIANTS if entry.main_job))
ROUNDS = {"cpu": 5, "cpu-1t": 5, "wasm": 3, "wasm-2t": 3}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("model", MODELS)
def test_bench_latency(
    benchmark, parity_benchmarking, timed_session, bench_models, trained_requests, model, provider
) -> None:
    if parity_benchmarking is not None:
        pytest.skip(parity_benchmarking)
    session = timed_session(model, provider)
    request = trained_requests[0]
    _, samples = session.time(request)  # warm-up: first-run allocations are not latency
    audio_seconds = samples / SAMPLE_RATE
    benchmark.group = f"kokoro {provider}"
    benchmark.extra_info.update(
        model=model,
        provider=provider,
        audio_seconds=audio_seconds,
        size_bytes=bench_models(model).stat().st_size,
    )
    benchmark.pedantic(session.time, args=(request,), rounds=ROUNDS[provider], iterations=1)
    benchmark.extra_info["rtf"] = benchmark.stats.stats.median / audio_seconds


@pytest.mark.parity
@pytest.mark.parametrize("provider", PROVIDERS)
def test_parity_bench_speed_against_fp32_in_one_run(
    provider, require_timing, bench_models, speed_plan, parity_record, parity_runs
) -> None:
    """Each variant's real-time factor over float32's, interleaved in one run, is within its
    measured bound, and its integer kernels ran."""
    require_timing(provider)
    models = {name: bench_models(name) for name in GATED}
    plan = speed_plan(provider, length_free=True)  # the ratios hold on one token (latency.py)
    assert_speed_within_bounds(models, provider, plan, parity_record, parity_runs)
