"""int8 variants of the trained Kokoro-82M against its float32 source, each within its gates.

Judged on the held-out sentences (no tolerance or exclusion was chosen on them), with timing
forced to float32's durations, each axis printed beside its noise floor. The registry's
landscape variants (the signed-int8 trap) are judged the same way in ``test_int8_trap``
(``make test``), not in the main job.
"""

from __future__ import annotations

import pytest
from trained_gates import assert_variant_within_its_gates

from parity.judge.variant_registry import PEER, built_variants, variant

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("variant", [entry.name for entry in built_variants(main_job=True)])
def test_parity_int8_variant_of_trained_kokoro_within_its_gates(
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


def test_parity_published_int8_is_measured_beside_ours(
    kokoro_trained, trained_verdict, trained_outputs, parity_record
) -> None:
    """The peer: kokoro-onnx's int8 of the same weights, by the same measures and gates."""
    path = kokoro_trained[0].int8_path
    # Named as its latency is recorded, so the report can pair the two.
    quality = trained_verdict(PEER, path, variant(PEER).tolerance)
    parity_record.audio(PEER, trained_outputs(path)[0].waveform, spoken=quality.requests[0])
    parity_record.add("int8 quality (trained)", quality.summary(), quality=quality)
    assert quality.timing == "forced"
    assert quality, quality.summary()
