"""Latency of the trained model's variants on ONNX Runtime CPU and real WebAssembly.

``pytest -k bench --benchmark-autosave`` records a run; ``--benchmark-compare
--benchmark-compare-fail=median:10%`` fails on a slower commit. Without a ``--benchmark-*``
flag the timed cases skip, and the speed gates (ratios to float32 inside one run) run on the
CPU provider only.
"""

from __future__ import annotations

import statistics

import pytest

from parity.builders.model import SAMPLE_RATE
from parity.builders.quantize import TRAINED_VARIANTS
from parity.judge.tolerances import SPEED_VS_FP32
from parity.measure.bench import PROVIDERS, measure_cached, speed_ratios

MODELS = ("fp32", "published", *sorted(TRAINED_VARIANTS))
ROUNDS = {"cpu": 5, "cpu-1t": 5, "wasm": 3}


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
    provider, require_timing, bench_models, trained_requests, parity_record, parity_runs
) -> None:
    """Each variant's real-time factor over float32's, interleaved in one run, is within its
    measured bound; the signed-int8 trap must stay visibly slow."""
    require_timing(provider)
    models = {name: bench_models(name) for name in MODELS}
    records = measure_cached(models, provider, trained_requests[:1], repeats=3, runs=parity_runs)
    ratios = speed_ratios(records, "fp32")
    for record in records:
        parity_record.add(f"latency ({provider})", record.line(), record=record)
    parity_record.add(
        f"latency ({provider})",
        "time over fp32's, same run: " + ", ".join(f"{n} x{r:.2f}" for n, r in ratios.items()),
        ratios=ratios,
    )
    spread = statistics.median(record.spread for record in records)
    outside = {
        name: round(ratios[name], 2)
        for name, bound in SPEED_VS_FP32.items()
        if not bound.accepts(ratios[name])
    }
    assert not outside, f"speed ratio to fp32 out of bounds: {outside} (median spread {spread:.0%})"
