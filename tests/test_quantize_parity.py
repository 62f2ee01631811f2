"""int8 variants of the trained Kokoro-82M against its float32 source, each within its gates.

Judged on the held-out sentences (no tolerance or exclusion was chosen on them), with timing
forced to float32's durations, each axis printed beside its noise floor.
"""

from __future__ import annotations

import pytest

from parity.builders.quantize import TRAINED_VARIANTS
from parity.judge.tolerances import INT8_VARIANTS
from parity.search.optimize import PEER

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("variant", sorted(TRAINED_VARIANTS))
def test_parity_int8_variant_of_trained_kokoro_within_its_gates(
    variant, trained_variant, trained_verdict, trained_listen, trained_reference, parity_record
) -> None:
    built = trained_variant(variant)
    quality = trained_verdict(variant, built.path, INT8_VARIANTS[variant])
    spoken = quality.requests[0]
    parity_record.audio("fp32", trained_reference[0].waveform, spoken=spoken)
    parity_record.audio(variant, trained_listen(built.path)[0].waveform, spoken=spoken)
    parity_record.add("int8 quality (trained)", quality.summary(), quality=quality)
    assert quality.timing == "forced"
    assert quality, quality.summary()


def test_parity_published_int8_is_measured_beside_ours(
    kokoro_trained, trained_verdict, trained_listen, parity_record
) -> None:
    """The peer: kokoro-onnx's int8 of the same weights, by the same measures and gates."""
    path = kokoro_trained[0].int8_path
    # Named as its latency is recorded, so the report can pair the two.
    quality = trained_verdict(PEER, path, INT8_VARIANTS[PEER])
    parity_record.audio(PEER, trained_listen(path)[0].waveform, spoken=quality.requests[0])
    parity_record.add("int8 quality (trained)", quality.summary(), quality=quality)
    assert quality.timing == "forced"
    assert quality, quality.summary()
