"""int8 variants of the trained Kokoro-82M against its float32 source, each within its gates."""

from __future__ import annotations

import pytest

from parity.optimize import PEER
from parity.quality import hear_model
from parity.quantize import TRAINED_VARIANTS, QuantRecipe
from parity.tolerances import INT8_VARIANTS

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("variant", sorted(TRAINED_VARIANTS))
def test_parity_int8_variant_of_trained_kokoro_within_its_gates(
    variant, trained_variant, trained_requests, trained_reference_audio, parity_record
) -> None:
    built = trained_variant(variant)
    quality, audio = hear_model(
        variant,
        built.path,
        reference=trained_reference_audio,
        requests=trained_requests,
        size_ratio=built.size_ratio,
        tolerance=INT8_VARIANTS[variant],
    )
    spoken = trained_requests[0].name
    parity_record.audio("fp32", trained_reference_audio[0], spoken=spoken)
    parity_record.audio(variant, audio[0], spoken=spoken)
    parity_record.add("int8 quality (trained)", quality.summary(), quality=quality)
    assert quality, quality.summary()


def test_parity_published_int8_is_measured_beside_ours(
    kokoro_trained, trained_requests, trained_reference_audio, parity_record
) -> None:
    """The peer: kokoro-onnx's int8 of the same weights, by the same measures and gates."""
    model, _ = kokoro_trained
    quality, audio = hear_model(
        PEER,  # the name its latency is recorded under, so the report can pair the two
        model.int8_path,
        reference=trained_reference_audio,
        requests=trained_requests,
        size_ratio=model.int8_path.stat().st_size / model.path.stat().st_size,
        tolerance=INT8_VARIANTS[PEER],
    )
    parity_record.audio(PEER, audio[0], spoken=trained_requests[0].name)
    parity_record.add("int8 quality (trained)", quality.summary(), quality=quality)
    assert quality, quality.summary()


def test_parity_int8_gates_catch_quantizing_every_layer(
    trained_variant, trained_requests, trained_reference_audio, parity_record
) -> None:
    """Without the measured exclusions, the same gates fail on length and static."""
    built = trained_variant("dynamic-uint8-everything", QuantRecipe(exclude_scopes=()))
    quality, _ = hear_model(
        "dynamic-uint8-everything",
        built.path,
        reference=trained_reference_audio,
        requests=trained_requests,
        size_ratio=built.size_ratio,
        tolerance=INT8_VARIANTS["dynamic-uint8"],
    )
    parity_record.add("int8 quality (trained)", quality.summary())
    failed = " ".join(quality.failures)
    assert "length change" in failed  # ALBERT quantized: the audio is 2.5 to 3.5% short
    assert ">6 kHz share ratio" in failed  # conv_post quantized: static
