"""The quality verdict proves itself: it fails a model with every layer quantized, and its
noise floor reads zero for float32 against itself. These prove the harness, so they run in
``make test``, and in ``pytest -k parity`` when the code they cover changed (``harness``).
"""

from __future__ import annotations

import numpy as np
import pytest

from parity.builders.quantize import QuantRecipe
from parity.judge.tolerances import FLOOR_MAX_ALIGNED_MEL
from parity.judge.variant_registry import variant

pytestmark = pytest.mark.harness(
    "judge/quality.py",
    "judge/metrics.py",
    "builders/forced_timing.py",
    "judge/runners.py",
    "builders/quantize.py",
    "judge/tolerances",
)


def test_int8_gates_catch_quantizing_every_layer(
    trained_variant, trained_verdict, parity_record
) -> None:
    """Without the measured exclusions, the same gates fail on timing and static."""
    built = trained_variant("dynamic-uint8-everything", QuantRecipe(exclude_scopes=()))
    quality = trained_verdict(
        "dynamic-uint8-everything", built.path, variant("dynamic-uint8").tolerance
    )
    parity_record.add("int8 quality (trained)", quality.summary())
    failed = " ".join(quality.failures)
    assert "share of tokens moved" in failed  # ALBERT quantized: 9 to 11% of durations move
    assert "length change" in failed  # and the audio is up to 5.5% short
    assert ">6 kHz share ratio" in failed  # conv_post quantized: static


def test_verdict_floor_is_small_and_float32_against_itself_reads_zero(
    kokoro_trained, trained_held_out, trained_reference, trained_floor
) -> None:
    """The floors every gate prints: float32 through the same pipeline again reads exactly
    zero, and a 1e-7 style change moves no duration and stays far below every variant."""
    from parity.judge.quality import model_outputs

    again = model_outputs(kokoro_trained[0].path, trained_held_out[:1], trained_reference[:1])[0]
    assert again.forced
    np.testing.assert_array_equal(again.waveform, trained_reference[0].waveform)
    assert trained_floor.worst.moved_tokens == 0
    assert trained_floor.worst.length_change == 0
    assert trained_floor.mean.aligned_mel < FLOOR_MAX_ALIGNED_MEL
