"""Exact, complex-free STFT/iSTFT as convolutions, a drop-in for kokoro's ``CustomSTFT``.

kokoro's ``CustomSTFT`` replaces reflect padding with replicate padding and skips both the
one-sided spectrum weights and the window-envelope normalisation of the inverse, so it only
approximates ``torch.stft``/``torch.istft`` (edges and the inverse are off). This module
computes the same thing as torch, hann window, reflect padding and ``center=True`` included,
with real-valued ops only, so the TorchScript ONNX exporter takes it with a dynamic length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from parity.builders.dft import dft_tables

__all__ = ["STFT", "StftDeviation", "atan2", "measure_against_torch"]


def atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``torch.atan2`` written with ops that ONNX defines, keeping torch's conventions.

    The TorchScript exporter lowers ``torch.atan2`` to ``Atan(y / x)`` plus a quadrant fix that
    gives -pi where torch gives +pi (y == 0, x < 0: every negative DC or Nyquist bin) and NaN
    at the origin where torch gives 0. This form gives +pi for y == +-0, x < 0 (what
    ``torch.angle`` returns on ``torch.stft`` output, whose DC/Nyquist imaginary parts are +0),
    +-pi/2 on the imaginary axis and 0 at the origin.
    """
    safe_x = torch.where(x == 0, torch.ones_like(x), x)
    base = torch.atan(y / safe_x)
    left_half_plane = torch.where(y >= 0, base + math.pi, base - math.pi)
    imaginary_axis = torch.sign(y) * (math.pi / 2)
    return torch.where(x > 0, base, torch.where(x < 0, left_half_plane, imaginary_axis))


def _centered_hann(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic hann window of ``win_length`` zero-padded on both sides to ``n_fft`` (as torch)."""
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64).numpy()
    left = (n_fft - win_length) // 2
    return np.pad(window, (left, n_fft - win_length - left))


class SupportsStft(Protocol):
    """What Kokoro's generator calls on its STFT (ours and kokoro's ``CustomSTFT`` alike)."""

    def transform(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def inverse(self, magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor: ...


class _Analysis(nn.Module):
    """The forward STFT: framing convolutions, rounding-noise snap, exportable atan2."""

    forward_real: torch.Tensor
    forward_imag: torch.Tensor
    window_row: torch.Tensor

    def __init__(
        self, kernels: dict[str, torch.Tensor], n_fft: int, hop_length: int, center: bool
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.center = n_fft, hop_length, center
        # Components below this share of their frame's L1 norm (sum |w x|) are rounding noise:
        # float32 convolution leaves about 1e-7 of it (20 terms). Their phase is arbitrary and
        # differs between backends, which ONNX Runtime sums in another order, and Kokoro feeds
        # the phase to a convolution, so they are snapped to 0 (the constant source of an
        # unvoiced stretch has nothing else in bins 2 to 10). The snap moves a complex value
        # by at most this share of the frame's L1 norm: against torch.stft, 9.5e-5 on spectra
        # up to 12 (2.2e-6 without it). Measured on Kokoro's forced generator (one-token
        # case), 1e-5 leaves 3.2e-5 rms between ONNX Runtime and PyTorch, 1e-6 leaves 1.5e-4.
        self.noise_floor = 1e-5
        # Constants of (n_fft, hop, window), not weights: kept out of state dicts.
        for name, kernel in kernels.items():
            self.register_buffer(name, kernel, persistent=False)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) waveform to (magnitude, phase), each (B, n_fft // 2 + 1, frames)."""
        if self.center:
            pad = self.n_fft // 2
            waveform = F.pad(waveform, (pad, pad), mode="reflect")
        frames = waveform.unsqueeze(1)
        real = F.conv1d(frames, self.forward_real, stride=self.hop_length)
        imag = F.conv1d(frames, self.forward_imag, stride=self.hop_length)
        magnitude = torch.sqrt(real * real + imag * imag)
        floor = self.noise_floor * F.conv1d(frames.abs(), self.window_row, stride=self.hop_length)
        zero = torch.zeros_like(real)
        real = torch.where(real.abs() > floor, real, zero)
        imag = torch.where(imag.abs() > floor, imag, zero)
        return magnitude, atan2(imag, real)


class _Synthesis(nn.Module):
    """The inverse STFT: overlap-add convolutions normalised by the window envelope."""

    inverse_real: torch.Tensor
    inverse_imag: torch.Tensor
    window_squared: torch.Tensor

    def __init__(
        self, kernels: dict[str, torch.Tensor], n_fft: int, hop_length: int, center: bool
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.center = n_fft, hop_length, center
        for name, kernel in kernels.items():
            self.register_buffer(name, kernel, persistent=False)

    def forward(
        self, magnitude: torch.Tensor, phase: torch.Tensor, length: int | None = None
    ) -> torch.Tensor:
        """(magnitude, phase) back to a (B, 1, T) waveform, window envelope normalised."""
        real = magnitude * torch.cos(phase)
        imag = magnitude * torch.sin(phase)
        summed = F.conv_transpose1d(real, self.inverse_real, stride=self.hop_length)
        summed = summed + F.conv_transpose1d(imag, self.inverse_imag, stride=self.hop_length)
        envelope = F.conv_transpose1d(
            torch.ones_like(real[:, :1, :]), self.window_squared, stride=self.hop_length
        )
        start = self.n_fft // 2 if self.center else 0
        stop = summed.shape[-1] - start if length is None else start + length
        waveform = summed[..., start:stop] / envelope[..., start:stop]
        if length is not None and waveform.shape[-1] < length:
            waveform = F.pad(waveform, (0, length - waveform.shape[-1]))
        return waveform


class STFT(nn.Module):
    """STFT/iSTFT with real convolutions that matches ``torch.stft``/``torch.istft``.

    ``transform(x)`` returns ``(magnitude, phase)`` of shape ``(B, n_fft // 2 + 1, frames)``;
    ``inverse(magnitude, phase, length=None)`` returns ``(B, 1, T)`` like kokoro's STFT classes.
    """

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        win_length: int | None = None,
        center: bool = True,
    ) -> None:
        super().__init__()
        win_length = n_fft if win_length is None else win_length
        if n_fft < 2 or not 0 < win_length <= n_fft or not hop_length > 0:
            raise ValueError(
                f"STFT needs n_fft >= 2, 0 < win_length <= n_fft and hop_length > 0; "
                f"got n_fft={n_fft}, win_length={win_length}, hop_length={hop_length}"
            )
        window = _centered_hann(n_fft, win_length)
        envelope = np.zeros(hop_length)
        np.add.at(envelope, np.arange(n_fft) % hop_length, window**2)
        if envelope.min() <= 1e-11:
            raise ValueError(
                f"hann window of {win_length} with hop {hop_length} (n_fft {n_fft}) breaks the "
                "nonzero-overlap-add condition, so no inverse exists; use a smaller hop_length"
            )
        self.n_fft, self.hop_length, self.win_length, self.center = (
            n_fft,
            hop_length,
            win_length,
            center,
        )
        cos, sin = dft_tables(n_fft)
        # irfft weights: bins other than DC and Nyquist stand for two conjugate bins.
        onesided = np.full((n_fft // 2 + 1, 1), 2.0)
        onesided[0] = 1.0
        if n_fft % 2 == 0:
            onesided[-1] = 1.0

        def kernel(table: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(table[:, None, :]).float()

        kernels = {
            "forward_real": cos * window,
            "forward_imag": -sin * window,
            "inverse_real": onesided * cos * window / n_fft,
            "inverse_imag": -onesided * sin * window / n_fft,
            "window_squared": (window**2)[None, :],
            "window_row": window[None, :],
        }
        # Two submodules, so the exporter gives each half its own node scope
        # (/decoder/generator/stft/analysis/...) and hooks can capture it.
        analysis = ("forward_real", "forward_imag", "window_row")
        self.analysis = _Analysis(
            {name: kernel(kernels[name]) for name in analysis}, n_fft, hop_length, center
        )
        self.synthesis = _Synthesis(
            {name: kernel(table) for name, table in kernels.items() if name not in analysis},
            n_fft,
            hop_length,
            center,
        )

    def transform(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) waveform to (magnitude, phase), each (B, n_fft // 2 + 1, frames)."""
        return self.analysis(waveform)

    def inverse(
        self, magnitude: torch.Tensor, phase: torch.Tensor, length: int | None = None
    ) -> torch.Tensor:
        """(magnitude, phase) back to a (B, 1, T) waveform, window envelope normalised."""
        return self.synthesis(magnitude, phase, length)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Round trip, as kokoro's ``CustomSTFT.forward``: (B, T) in, (B, 1, T) out."""
        magnitude, phase = self.transform(waveform)
        return self.inverse(magnitude, phase, length=waveform.shape[-1])


@dataclass(frozen=True)
class StftDeviation:
    """How far an STFT module is from ``torch.stft``/``torch.istft`` on random signals.

    Spectra are compared as complex values magnitude * exp(i * phase): a phase alone means
    nothing where the magnitude is near zero. Edge frames are the ones padding reaches.
    """

    interior: float  # max |X - X_torch| over frames padding does not reach
    edges: float  # max |X - X_torch| over the frames it does
    edge_magnitude: float  # max ||X| - |X_torch|| over those edge frames
    inverse: float  # max |istft(X) - torch.istft(X)| for the same random spectrum
    scale: float  # max |X_torch|, for reading the figures above

    def summary(self) -> str:
        return (
            f"interior {self.interior:.2g}, edges {self.edges:.2g} "
            f"(magnitude {self.edge_magnitude:.2g}), "
            f"inverse {self.inverse:.2g}, on spectra up to {self.scale:.2g}"
        )


def measure_against_torch(
    module: SupportsStft,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    *,
    length: int = 2000,
    batch: int = 4,
    seed: int = 0,
) -> StftDeviation:
    """Compare ``module.transform`` and ``module.inverse`` with torch on seeded signals."""
    win_length = n_fft if win_length is None else win_length
    generator = torch.Generator().manual_seed(seed)
    signal = torch.randn(batch, length, generator=generator)
    window = torch.hann_window(win_length, periodic=True)
    reference = torch.stft(
        signal, n_fft, hop_length, win_length, window=window, center=True, return_complex=True
    )
    with torch.no_grad():
        magnitude, phase = module.transform(signal)
    ours = torch.polar(magnitude, phase)
    edge = (n_fft // 2 + hop_length - 1) // hop_length + 1
    interior = (ours - reference)[..., edge:-edge].abs()
    edges = torch.cat([(ours - reference)[..., :edge], (ours - reference)[..., -edge:]], dim=-1)
    edge_magnitude = torch.cat(
        [(magnitude - reference.abs())[..., :edge], (magnitude - reference.abs())[..., -edge:]],
        dim=-1,
    )
    spectrum = torch.polar(
        torch.rand(reference.shape, generator=generator) * 2,
        (torch.rand(reference.shape, generator=generator) - 0.5) * 2 * math.pi,
    )
    inverse_reference = torch.istft(
        spectrum, n_fft, hop_length, win_length, window=window, center=True
    )
    with torch.no_grad():
        inverse = module.inverse(spectrum.abs(), spectrum.angle()).reshape(
            inverse_reference.shape[0], -1
        )
    overlap = min(inverse.shape[-1], inverse_reference.shape[-1])
    return StftDeviation(
        interior=float(interior.max()) if interior.numel() else 0.0,
        edges=float(edges.abs().max()),
        edge_magnitude=float(edge_magnitude.abs().max()),
        inverse=float((inverse[..., :overlap] - inverse_reference[..., :overlap]).abs().max()),
        scale=float(reference.abs().max()),
    )


class _StftGraph(nn.Module):
    """transform and inverse in one graph, to check both after export."""

    def __init__(self, stft: STFT) -> None:
        super().__init__()
        self.stft = stft

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        magnitude, phase = self.stft.transform(waveform)
        return magnitude, phase, self.stft.inverse(magnitude, phase)


def export_stft(stft: STFT, path: str, opset: int = 20) -> tuple[str, ...]:
    """Export transform and inverse with the TorchScript exporter, batch and length dynamic.

    Outputs ``magnitude``, ``phase`` and ``restored`` for input ``waveform`` [B, T]; returns
    the exporter's warnings.
    """
    from parity.builders.export_warnings import exporter_warnings

    example = torch.zeros(2, 4 * stft.n_fft + 3)
    with exporter_warnings() as noted:
        _export_graph(stft, example, path, opset)
    return tuple(noted)


def _export_graph(stft: STFT, example: torch.Tensor, path: str, opset: int) -> None:
    torch.onnx.export(
        _StftGraph(stft).eval(),
        (example,),
        path,
        dynamo=False,
        opset_version=opset,
        input_names=["waveform"],
        output_names=["magnitude", "phase", "restored"],
        dynamic_axes={
            "waveform": {0: "batch", 1: "samples"},
            "magnitude": {0: "batch", 2: "frames"},
            "phase": {0: "batch", 2: "frames"},
            "restored": {0: "batch", 2: "restored_samples"},
        },
    )
