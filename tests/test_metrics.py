"""Audio losses: the static detector sees hiss that log-mel distance ranks as small."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from parity.judge.metrics import (
    aligned_distance,
    high_frequency_ratio,
    log_mel_distance,
    loudness_db,
    noise_floor_db,
)
from parity.judge.tolerances import (
    FORCED_PAIRING_REL,
    HISS_MAX_HF_RATIO,
    HISS_MIN_FLOOR_RISE_DB,
    HISS_MIN_MCD_DB,
    INT8_MAX_FLOOR_MOVE_DB,
    NOISE_FLOOR_TRACKING_DB,
    SHIFT_MAX_ALIGNED_SHARE,
)


@pytest.fixture(scope="module")
def trained_speech(kokoro_trained, parity_inputs, parity_runs) -> tuple[np.ndarray, np.ndarray]:
    """The fixture sentence from the trained float32 and int8 models, voice jf_alpha."""
    from parity.judge.quality import model_outputs

    model, voices = kokoro_trained
    base = parity_inputs.case("sentence", voices.vocab)
    request = replace(base, style=voices.style("jf_alpha", len(base.phonemes)))
    clean, int8 = (
        model_outputs(path, [request], runs=parity_runs)[0]
        for path in (model.path, model.int8_path)
    )
    return clean.waveform.astype(np.float64), int8.waveform.astype(np.float64)


def _with_white_noise(clean: np.ndarray, snr_db: float) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(len(clean))
    return clean + noise * np.sqrt(np.mean(clean**2) / 10 ** (snr_db / 10))


@pytest.mark.harness("judge/metrics.py")
def test_static_detector_flags_hiss_that_mel_distance_ranks_below_int8(
    trained_speech, parity_record
) -> None:
    clean, int8 = trained_speech
    hissy = _with_white_noise(clean, snr_db=40)
    mel_hiss, mel_int8 = log_mel_distance(clean, hissy), log_mel_distance(clean, int8)
    floors = {name: noise_floor_db(w) for name, w in [("fp32", clean), ("int8", int8)]}
    floors["40 dB hiss"] = noise_floor_db(hissy)
    parity_record.add(
        "static detector",
        f"log-mel to fp32: int8 {mel_int8:.2f}, 40 dB white noise {mel_hiss:.2f}; noise floor "
        + ", ".join(f"{name} {value:.1f} dB" for name, value in floors.items()),
    )
    assert mel_hiss < mel_int8  # mel distance calls the hiss the smaller change...
    assert floors["40 dB hiss"] > floors["fp32"] + HISS_MIN_FLOOR_RISE_DB  # ...the floor sees it
    assert abs(floors["int8"] - floors["fp32"]) < INT8_MAX_FLOOR_MOVE_DB  # and not the int8
    # The share above 6 kHz does not see the hiss either.
    assert high_frequency_ratio(hissy) < HISS_MAX_HF_RATIO * high_frequency_ratio(clean)


@pytest.mark.parametrize("snr_db", [20, 30, 40, 50])
def test_noise_floor_tracks_the_level_of_added_noise(trained_speech, snr_db) -> None:
    clean, _ = trained_speech
    floor = noise_floor_db(_with_white_noise(clean, snr_db))
    assert floor == pytest.approx(-snr_db, abs=NOISE_FLOOR_TRACKING_DB)


def test_noise_floor_of_silence_and_of_too_short_input() -> None:
    assert noise_floor_db(np.zeros(24_000)) == float("-inf")
    with pytest.raises(ValueError, match="fewer than one frame"):
        noise_floor_db(np.zeros(100))


def _stretched(clean: np.ndarray, at: float, pause_s: float) -> np.ndarray:
    """``clean`` with a pause inserted at fraction ``at``: what one token rounded one frame
    longer does to every later frame."""
    cut = int(len(clean) * at)
    return np.concatenate([clean[:cut], np.zeros(int(pause_s * 24_000)), clean[cut:]])


def test_aligned_distance_takes_a_timing_shift_out_that_plain_log_mel_counts(
    trained_speech,
) -> None:
    clean, _ = trained_speech
    shifted = _stretched(clean, 0.3, 0.05)
    plain = log_mel_distance(clean, shifted)
    aligned = aligned_distance(clean, shifted, frames_match=False)
    assert aligned.log_mel < SHIFT_MAX_ALIGNED_SHARE * plain, (aligned, plain)
    same = aligned_distance(clean, clean, frames_match=True)
    assert same.log_mel == 0.0
    assert same.mcd_db == 0.0
    # Forced frame pairing on shifted audio is the plain distance again: no hiding a shift.
    forced = aligned_distance(clean, shifted, frames_match=True)
    assert forced.log_mel == pytest.approx(plain, rel=FORCED_PAIRING_REL)


def test_aligned_distance_matches_levels_and_loudness_measures_them(trained_speech) -> None:
    clean, _ = trained_speech
    assert loudness_db(clean, 2 * clean) == pytest.approx(20 * math.log10(2))
    # Doubling is exact in binary floating point, so matching the level leaves nothing.
    assert aligned_distance(clean, 2 * clean, frames_match=True).log_mel == 0.0
    hissy = _with_white_noise(clean, 30)
    assert aligned_distance(clean, hissy, frames_match=True).mcd_db > HISS_MIN_MCD_DB


@pytest.mark.harness("judge/quality.py")
def test_a_variant_whose_audio_is_not_finite_fails_by_name(trained_speech) -> None:
    """kokoro-js's onnxruntime-web gave int8 files inf on WebGPU (2026-12-07), and the verdict
    stopped inside librosa. Such a request is infinitely far on each sound axis and named; the
    finite request is still measured, and the gain comes from it alone."""
    from parity.core.inputs import KokoroInput
    from parity.judge.quality import compare_variant, level_gain
    from parity.judge.runners import KokoroOutput
    from parity.judge.tolerances import QUANTIZED_FILE

    clean, int8 = (w.astype(np.float32) for w in trained_speech)
    durations = np.ones(3, np.int64)
    broken = int8.copy()
    broken[100] = np.inf
    source = [KokoroOutput(clean, durations), KokoroOutput(clean, durations)]
    variant = [KokoroOutput(int8, durations, True), KokoroOutput(broken, durations, True)]
    ids, style = np.zeros((1, 3), np.int64), np.zeros((1, 256), np.float32)
    requests = [KokoroInput(name, "ab", ids, style) for name in ("kept", "broken")]
    quality = compare_variant(
        "int8", source, variant, requests, size_ratio=0.25, tolerance=QUANTIZED_FILE
    )
    assert not quality
    assert quality.failures[0] == "audio not finite on 1 of 2 requests: broken"
    assert math.isfinite(quality.aligned_mel[0])
    assert quality.aligned_mel[1] == math.inf
    assert quality.worst().aligned_mel == math.inf
    assert quality.worst_request("aligned_mel") == "kept"  # among the finite ones
    gain = level_gain(source, variant)
    assert gain.factor == pytest.approx(level_gain(source[:1], variant[:1]).factor)
    assert "1 whose audio is not finite left out" in gain.method
