"""The harmonic source judged by its distribution, where PyTorch's draws random numbers.

kokoro's ``SourceModuleHnNSF`` adds a random initial phase to each overtone (``torch.rand``)
and Gaussian noise (``torch.randn_like``) on every call, and an export keeps both as
``RandomUniformLike`` / ``RandomNormalLike``: ONNX Runtime draws other numbers, so the two
sources differ sample by sample (rms 0.03 to 0.06 on the seeded model) with nothing wrong.
Replaying ORT's draws in PyTorch does not cure it for long requests: kokoro sums the phase
in float32, and over 60 s the two runtimes' roundings part by as much as the draws do.

So the source is judged as a distribution. PyTorch's source runs ``DRAWS`` times on the very
F0 ONNX Runtime's fed its own (seeded, so the figure repeats); the log-mel distance of ORT's
source to each draw is set against the distance between two draws. A faithful export reads
a ratio near 1; a wrong F0 scale, overtone weight or noise level reads far more
(``parity.judge.tolerances.STOCHASTIC_SOURCE`` has the measurements).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from parity.judge.metrics import log_mel, log_mel_frames_distance

__all__ = [
    "DRAWS",
    "SourceDistribution",
    "draws_random",
    "generator_distribution",
    "source_distribution",
]

DRAWS = 8
DRAW_SEED = 20_261_205


@dataclass(frozen=True)
class SourceDistribution:
    """ORT's harmonic source against ``draws`` draws of PyTorch's on the same F0."""

    draws: int
    distance: float  # mean log-mel distance of ORT's source to each draw
    floor: float  # mean log-mel distance between two draws: the randomness itself
    floor_max: float

    @property
    def ratio(self) -> float:
        return self.distance / self.floor if self.floor > 0 else float("inf")

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.distance))

    def summary(self) -> str:
        return (
            f"log-mel {self.distance:.4f} to {self.draws} PyTorch draws, which sit "
            f"{self.floor:.4f} apart (up to {self.floor_max:.4f}): ratio {self.ratio:.3f}"
        )


def draws_random(source: object) -> bool:
    """Whether a harmonic source module draws random numbers: every source a Kokoro is built
    with does (kokoro's ``SourceModuleHnNSF``) but parity's deterministic one."""
    from parity.builders.model import DeterministicSource

    return not isinstance(source, DeterministicSource)


def source_distribution(
    source: object, f0: np.ndarray, onnx_source: np.ndarray, draws: int = DRAWS
) -> SourceDistribution:
    """``onnx_source`` set against ``draws`` seeded draws of ``source`` on ``f0`` (the
    source module's own input, [1, T, 1] at audio rate)."""
    return _against_draws(lambda tensors: source(*tensors), [f0], onnx_source, draws)  # type: ignore[operator]


def generator_distribution(
    generator: object, args: list[np.ndarray], onnx_waveform: np.ndarray, draws: int = 3
) -> SourceDistribution:
    """The free-running waveform as a distribution: ``onnx_waveform`` against ``draws`` seeded
    runs of PyTorch's generator on its own inputs ``args``, each with fresh random draws
    (three: a whole generator run each, 20 s for the 60 s context-limit request)."""
    return _against_draws(lambda tensors: (generator(*tensors),), args, onnx_waveform, draws)  # type: ignore[operator]


def _against_draws(
    run: Callable[[list[Any]], Any], arrays: list[np.ndarray], candidate: np.ndarray, draws: int
) -> SourceDistribution:
    import torch

    ours = np.asarray(candidate, dtype=np.float32).reshape(-1)
    if not np.isfinite(ours).all():
        return SourceDistribution(draws, float("inf"), 0.0, 0.0)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(DRAW_SEED)
        tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays]
        samples = [run(tensors)[0].numpy().reshape(-1) for _ in range(draws)]
    if any(sample.shape != ours.shape for sample in samples):
        return SourceDistribution(draws, float("inf"), 0.0, 0.0)
    mels = [log_mel(sample) for sample in samples]
    mine = log_mel(ours)
    spread = [log_mel_frames_distance(a, b) for a, b in itertools.combinations(mels, 2)]
    distance = float(np.mean([log_mel_frames_distance(mel, mine) for mel in mels]))
    return SourceDistribution(draws, distance, float(np.mean(spread)), float(np.max(spread)))
