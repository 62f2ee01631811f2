"""How a variant sounds next to its float32 source: the same requests through both.

Kokoro's generator turns tiny F0 differences into phase chaos, so a variant is judged on
measures that chaos moves little or that it cannot fake: how long the audio is (durations),
the mean log-mel distance over several voices, and two static detectors (the noise floor of
the quietest frames, and the share of energy above 6 kHz).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.inputs import KokoroInput
from parity.metrics import high_frequency_ratio, log_mel_distance, noise_floor_db
from parity.tolerances import VariantTolerance

__all__ = ["VariantQuality", "compare_variant", "hear_model"]


@dataclass(frozen=True)
class VariantQuality:
    """Per-request figures of a variant against its source, and the verdict."""

    variant: str
    requests: tuple[str, ...]
    length_change: tuple[float, ...]  # len(variant) / len(source) - 1
    mel: tuple[float, ...]
    floor_rise_db: tuple[float, ...]
    hf_ratio: tuple[float, ...]  # variant's share above 6 kHz over the source's
    size_ratio: float
    tolerance: VariantTolerance
    failures: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        verdict = "ok" if self else "FAILED: " + "; ".join(self.failures)
        return (
            f"{self.variant}: size {self.size_ratio:.2f}x, length "
            f"{min(self.length_change):+.1%}..{max(self.length_change):+.1%}, log-mel mean "
            f"{np.mean(self.mel):.2f} (max {max(self.mel):.2f}), noise floor +"
            f"{max(self.floor_rise_db):.1f} dB, >6 kHz x{max(self.hf_ratio):.2f} over "
            f"{len(self.requests)} requests: {verdict}"
        )


def compare_variant(
    name: str,
    source: Sequence[np.ndarray],
    variant: Sequence[np.ndarray],
    requests: Sequence[KokoroInput],
    *,
    size_ratio: float,
    tolerance: VariantTolerance,
) -> VariantQuality:
    """Judge ``variant``'s waveforms against ``source``'s for the same ``requests``."""
    lengths = tuple(len(b) / len(a) - 1 for a, b in zip(source, variant, strict=True))
    mels = tuple(log_mel_distance(a, b) for a, b in zip(source, variant, strict=True))
    floors = tuple(
        noise_floor_db(b) - noise_floor_db(a) for a, b in zip(source, variant, strict=True)
    )
    hf = tuple(
        high_frequency_ratio(b) / high_frequency_ratio(a)
        for a, b in zip(source, variant, strict=True)
    )
    checks = [
        (max(abs(x) for x in lengths), tolerance.max_length_change, "length change"),
        (float(np.mean(mels)), tolerance.mean_mel, "mean log-mel"),
        (max(floors), tolerance.max_floor_rise_db, "noise floor rise (dB)"),
        (max(hf), tolerance.max_hf_ratio, ">6 kHz share ratio"),
        (size_ratio, tolerance.max_size_ratio, "size ratio"),
    ]
    failures = tuple(
        f"{what} {value:.3g} > {bound:g}"
        for value, bound, what in checks
        if not np.isfinite(value) or value > bound
    )
    return VariantQuality(
        name,
        tuple(r.name for r in requests),
        lengths,
        mels,
        floors,
        hf,
        size_ratio,
        tolerance,
        failures,
    )


def hear_model(
    name: str,
    path: Path,
    *,
    reference: Sequence[np.ndarray],
    requests: Sequence[KokoroInput],
    size_ratio: float,
    tolerance: VariantTolerance,
) -> tuple[VariantQuality, list[np.ndarray]]:
    """Run the ONNX model at ``path`` on ``requests`` in ONNX Runtime and judge its audio
    against float32's ``reference``; the waveforms come back too, to record or listen to."""
    from parity.runners import OrtRunner

    runner = OrtRunner(path)
    audio = [runner.infer(request).waveform for request in requests]
    quality = compare_variant(
        name, reference, audio, requests, size_ratio=size_ratio, tolerance=tolerance
    )
    return quality, audio
