"""The signed-int8 trap: ONNX Runtime's dynamic quantization with signed int8 weights per
channel sounds as clean as the other dynamic variant but runs clearly slower than float32.

A fact about ONNX Runtime's kernels, so ``make test`` checks it on every commit and
``pytest -k parity`` only when the code that builds, judges or times it changed since it last
passed here: its held-out verdict, build and timing took about 3 of the main job's cold 20 minutes.
"""

from __future__ import annotations

import pytest
from trained_gates import assert_speed_within_bounds, assert_variant_within_its_gates

from parity.builders.quantize import SIGNED_INT8_TRAP
from parity.measure.bench import PROVIDERS

pytestmark = pytest.mark.landscape(
    "builders/quantize.py",
    "builders/ort_tools.py",
    "judge/quality.py",
    "judge/runners.py",
    "judge/tolerances",
    "measure/bench.py",
    files=("tests/trained_gates.py",),
)


def test_signed_int8_trap_sounds_within_its_gates(
    trained_variant, trained_verdict, trained_outputs, trained_reference, parity_record
) -> None:
    assert_variant_within_its_gates(
        SIGNED_INT8_TRAP,
        trained_variant(SIGNED_INT8_TRAP).path,
        trained_verdict,
        trained_outputs,
        trained_reference,
        parity_record,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signed_int8_trap_bench_stays_clearly_slower_than_fp32(
    provider, require_timing, bench_models, speed_plan, parity_record, parity_runs
) -> None:
    """Kept visible rather than passed: its bound is a floor on the ratio, not a ceiling."""
    require_timing(provider)
    models = {name: bench_models(name) for name in ("fp32", SIGNED_INT8_TRAP)}
    # Its slow path costs the same share on any length (parity.pytest_plugin.latency).
    plan = speed_plan(provider, length_free=True)
    assert_speed_within_bounds(models, provider, plan, parity_record, parity_runs)
