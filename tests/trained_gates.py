"""The gates every int8 variant of the trained model passes, shared by the main job's variants
(``test_quantize_parity``, ``test_bench``) and the signed-int8 trap (``test_int8_trap``)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

from parity.judge.quality import VariantQuality
from parity.judge.variant_registry import variant as registered
from parity.measure.bench import measure_cached, speed_ratios


def assert_variant_within_its_gates(
    variant: str,
    path: Path,
    trained_verdict: Callable[..., VariantQuality],
    trained_outputs: Callable[[Path], list],
    trained_reference: list,
    parity_record,
) -> None:
    """The variant judged on the held-out requests, timing forced to float32's durations,
    against its registered tolerance; one request's audio goes to the report."""
    quality = trained_verdict(variant, path, registered(variant).tolerance)
    spoken = quality.requests[0]
    parity_record.audio("fp32", trained_reference[0].waveform, spoken=spoken)
    parity_record.audio(variant, trained_outputs(path)[0].waveform, spoken=spoken)
    parity_record.add("int8 quality (trained)", quality.summary(), quality=quality)
    assert quality.timing == "forced"
    assert quality, quality.summary()


def assert_speed_within_bounds(
    models: Mapping[str, Path], provider, plan, parity_record, parity_runs
) -> None:
    """Each model's time over float32's (``models`` holds ``fp32``), interleaved in one run,
    within its registered speed bound; and each integer variant's speed was its integer
    kernels' (``integer_kernels_cached``: one request profiled, kept in the run store), not
    float ops that happen to be fast enough."""
    from parity.measure.op_profile import integer_kernels_cached

    requests = plan.requests
    records = measure_cached(models, provider, requests[:1], repeats=plan.repeats, runs=parity_runs)
    ratios = speed_ratios(records, "fp32")
    for record in records:
        parity_record.add(f"latency ({provider})", record.line(), record=record)
    parity_record.add(
        f"latency ({provider})",
        "time over fp32's, fastest repeats of one run: "
        + ", ".join(f"{n} x{r:.2f}" for n, r in ratios.items())
        + (f" ({plan.reduced})" if plan.reduced else ""),
        ratios=ratios,
    )
    spread = statistics.median(record.spread for record in records)
    outside = {
        name: round(ratio, 2)
        for name, ratio in ratios.items()
        if name != "fp32" and not registered(name).speed.accepts(ratio)
    }
    kernels = [
        integer_kernels_cached(path, provider, requests[0], runs=parity_runs, name=name)
        for name, path in models.items()
        if name != "fp32"
    ]
    for check in kernels:
        parity_record.add(f"integer kernels ({provider})", check.summary(), kernels=check)
    problems = [check.summary() for check in kernels if not check]
    if outside:
        problems.insert(
            0, f"speed ratio to fp32 out of bounds: {outside} (median spread {spread:.0%})"
        )
    assert not problems, "; ".join(problems)
