"""Audio losses: waveform error, log-mel distance, and measures of static that mel misses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity.core.spec import SAMPLE_RATE

__all__ = [
    "MEL",
    "AlignedDistance",
    "MelSettings",
    "WaveformError",
    "aligned_distance",
    "high_frequency_ratio",
    "log_mel",
    "log_mel_distance",
    "log_mel_frames_distance",
    "loudness_db",
    "noise_floor_db",
    "waveform_error",
]


@dataclass(frozen=True)
class MelSettings:
    """librosa mel settings for every distance in the harness.

    n_fft 1024 / hop 256 / 80 mels at 24 kHz, power mel floored at 1e-5, natural log: with
    these, five trained Kokoro voices saying the same sentence are 1.6 to 3.3 apart (mean
    absolute difference), the figure issue #8 quotes as 2.4 to 3.1.
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    floor: float = 1e-5


MEL = MelSettings()


def log_mel(waveform: np.ndarray, settings: MelSettings = MEL) -> np.ndarray:
    """Natural-log mel power spectrogram [n_mels, frames]."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(waveform, dtype=np.float32),
        sr=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        n_mels=settings.n_mels,
    )
    return np.log(np.maximum(mel, settings.floor))


def log_mel_distance(
    reference: np.ndarray, candidate: np.ndarray, settings: MelSettings = MEL
) -> float:
    """Mean absolute log-mel difference over the frames both waveforms have."""
    return log_mel_frames_distance(log_mel(reference, settings), log_mel(candidate, settings))


def log_mel_frames_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``log_mel_distance`` of two log-mel spectrograms already computed."""
    frames = min(a.shape[1], b.shape[1])
    if frames == 0:
        return float("nan")
    return float(np.mean(np.abs(a[:, :frames] - b[:, :frames])))


@dataclass(frozen=True)
class AlignedDistance:
    """How two renderings of one request differ in sound, with timing taken out."""

    log_mel: float  # mean |log-mel difference| along the frame pairing, level matched
    mcd_db: float  # mel-cepstral distortion (coefficients 1..24) along the same pairing
    frames: int  # pairs on the path


# Mel cepstra for MCD: DCT-II of the natural-log mel amplitude, coefficients 1..24 (c0, the
# frame energy, is the loudness axis's business). MCD = 10/ln10 * sqrt(2 * sum of squares).
MCD_COEFFICIENTS = 24
_MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)


def _mel_cepstra(log_mel_power: np.ndarray) -> np.ndarray:
    from scipy.fft import dct

    return dct(0.5 * log_mel_power, type=2, norm="ortho", axis=0)[1 : MCD_COEFFICIENTS + 1]


def aligned_distance(
    reference: np.ndarray,
    candidate: np.ndarray,
    *,
    frames_match: bool,
    settings: MelSettings = MEL,
) -> AlignedDistance:
    """Log-mel distance and MCD of ``candidate`` against ``reference`` with timing removed.

    ``frames_match``: both were made on the same durations
    (``parity.builders.forced_timing``), so frame i pairs with frame i. Otherwise dynamic
    time warping (librosa) pairs the frames, and a duration that rounded the other way costs a
    few frames on the path, not every frame after it. The candidate is scaled to the
    reference's level first, so a gain difference shows on the loudness axis only.
    """
    import librosa

    gain = _rms(reference) / _rms(candidate) if _rms(candidate) > 0 else 1.0
    a = log_mel(reference, settings)
    b = log_mel(np.asarray(candidate, dtype=np.float64) * gain, settings)
    if frames_match:
        count = min(a.shape[1], b.shape[1])
        pairs = np.stack([np.arange(count), np.arange(count)], axis=1)
    else:
        _, path = librosa.sequence.dtw(X=a, Y=b, metric="cityblock", backtrack=True)
        pairs = path[::-1]
    if len(pairs) == 0:
        return AlignedDistance(float("nan"), float("nan"), 0)
    left, right = a[:, pairs[:, 0]], b[:, pairs[:, 1]]
    mcd = _MCD_SCALE * np.sqrt(np.sum((_mel_cepstra(left) - _mel_cepstra(right)) ** 2, axis=0))
    return AlignedDistance(float(np.mean(np.abs(left - right))), float(np.mean(mcd)), len(pairs))


def _rms(waveform: np.ndarray) -> float:
    signal = np.asarray(waveform, dtype=np.float64)
    return float(np.sqrt(np.mean(signal**2))) if signal.size else 0.0


def loudness_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The candidate's rms level over the reference's, in dB (0 when they play as loud)."""
    a, b = _rms(reference), _rms(candidate)
    if a <= 0 or b <= 0:
        return float("nan") if a != b else 0.0
    return float(20 * np.log10(b / a))


def high_frequency_ratio(waveform: np.ndarray, cutoff_hz: float = 6000.0) -> float:
    """Share of spectral energy above ``cutoff_hz``: the hiss that quantization adds.

    Measured on the trained Kokoro-82M (issue #9): 0.007 for float32 and the published int8,
    0.024 for every layer quantized, a rise that mel distance ranks as small.
    """
    signal = np.asarray(waveform, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(signal)) ** 2
    frequencies = np.fft.rfftfreq(len(signal), 1.0 / SAMPLE_RATE)
    total = spectrum.sum()
    return float(spectrum[frequencies > cutoff_hz].sum() / total) if total > 0 else 0.0


def noise_floor_db(waveform: np.ndarray, settings: MelSettings = MEL, share: float = 0.25) -> float:
    """Energy of the quietest ``share`` of frames against the mean frame, in dB.

    Static and hiss fill the pauses that speech leaves, where mel distance (averaged over
    all frames, and saturated by chaos elsewhere) hardly sees them. Measured on the trained
    Kokoro-82M (sentence fixture, voice jf_alpha): -66.3 dB in float32, -65.9 dB in the
    published int8; white noise at 40 dB SNR reads -39.9 dB while its log-mel distance to
    the clean audio is 0.19, less than the int8's 0.26. The share of energy above 6 kHz
    does not move at that SNR (0.0107 both).
    """
    import librosa

    if len(waveform) < settings.n_fft:
        raise ValueError(
            f"noise_floor_db: {len(waveform)} samples, fewer than one frame ({settings.n_fft})"
        )
    spectrum = np.abs(
        librosa.stft(
            np.asarray(waveform, dtype=np.float32),
            n_fft=settings.n_fft,
            hop_length=settings.hop_length,
        )
    )
    energy = (spectrum.astype(np.float64) ** 2).sum(axis=0)
    if energy.mean() <= 0:
        return float("-inf")  # digital silence: no floor at all
    quietest = np.sort(energy)[: max(1, int(energy.size * share))]
    return float(10 * np.log10(max(float(np.median(quietest)), 1e-30) / energy.mean()))


@dataclass(frozen=True)
class WaveformError:
    """Sample-wise error of a candidate against a reference of the same length."""

    max_abs: float
    peak: float
    rms_rel: float

    @property
    def max_rel(self) -> float:
        """Largest error as a share of the reference's peak."""
        return self.max_abs / self.peak if self.peak > 0 else float("inf")


def waveform_error(reference: np.ndarray, candidate: np.ndarray) -> WaveformError:
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"waveforms differ in length: {a.shape} vs {b.shape}")
    difference = a - b
    norm = np.linalg.norm(a)
    return WaveformError(
        max_abs=float(np.max(np.abs(difference))) if difference.size else 0.0,
        peak=float(np.max(np.abs(a))) if a.size else 0.0,
        rms_rel=float(np.linalg.norm(difference) / norm) if norm > 0 else float("inf"),
    )
