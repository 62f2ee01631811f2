"""The registry's landscape variants, today the signed-int8 trap: ONNX Runtime's dynamic
quantization with signed int8 weights per channel sounds as clean as the other dynamic variant
but runs clearly slower than float32.

A fact about ONNX Runtime's kernels, so ``make test`` checks it on every commit and
``pytest -k parity`` only when the code that builds, judges or times it changed since it last
passed here: its held-out verdict, build and timing took about 3 of the main job's cold 20 minutes.
"""

from __future__ import annotations

import pytest
from trained_gates import assert_speed_within_bounds, assert_variant_within_its_gates

from parity.judge.variant_registry import built_variants
from parity.measure.bench import PROVIDERS

pytestmark = pytest.mark.landscape(
    "builders/quantize.py",
    "builders/ort_tools.py",
    "judge/variant_registry.py",
    "judge/quality.py",
    "judge/runners.py",
    "judge/tolerances",
    "measure/bench.py",
    files=("tests/trained_gates.py",),
)


LANDSCAPE = [entry.name for entry in built_variants(main_job=False)]


@pytest.mark.parametrize("variant", LANDSCAPE)
def test_landscape_variant_sounds_within_its_gates(
    variant, trained_variant, trained_verdict, trained_outputs, trained_reference, parity_record
) -> None:
    assert_variant_within_its_gates(
        variant,
        trained_variant(variant).path,
        trained_verdict,
        trained_outputs,
        trained_reference,
        parity_record,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("variant", LANDSCAPE)
def test_landscape_variant_bench_within_its_speed_bound(
    variant, provider, require_timing, bench_models, speed_plan, parity_record, parity_runs
) -> None:
    """The trap is kept visible rather than passed: its bound is a floor on the ratio."""
    require_timing(provider)
    models = {name: bench_models(name) for name in ("fp32", variant)}
    # Its slow path costs the same share on any length (parity.pytest_plugin.latency).
    plan = speed_plan(provider, length_free=True)
    assert_speed_within_bounds(models, provider, plan, parity_record, parity_runs)
