"""Audio losses: waveform error, log-mel distance, and measures of static that mel misses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity.model import SAMPLE_RATE

__all__ = [
    "MEL",
    "MelSettings",
    "WaveformError",
    "high_frequency_ratio",
    "log_mel",
    "log_mel_distance",
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
    a, b = log_mel(reference, settings), log_mel(candidate, settings)
    frames = min(a.shape[1], b.shape[1])
    if frames == 0:
        return float("nan")
    return float(np.mean(np.abs(a[:, :frames] - b[:, :frames])))


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
