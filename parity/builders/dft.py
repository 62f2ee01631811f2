"""The DFT's cos and sin tables, shared by the exact STFT module (PyTorch) and the ONNX STFT
op rewrite (no torch)."""

from __future__ import annotations

import numpy as np

__all__ = ["dft_tables"]


def dft_tables(n_fft: int, onesided: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2*pi*k*n/N, [bins, n_fft], for the one-sided bins (or all of them),
    exact at the multiples of pi/2.

    Reducing k*n modulo N before the float math and snapping the quarter turns to 0/+-1 keeps
    the DC and Nyquist rows' sine exactly zero, so their imaginary parts are exactly zero as in
    an FFT (np.sin(pi) is 1.2e-16, which would leave a sign-random residue there).
    """
    k = np.arange(n_fft // 2 + 1 if onesided else n_fft)[:, None]
    n = np.arange(n_fft)[None, :]
    turns = (k * n) % n_fft
    angle = 2.0 * np.pi * turns / n_fft
    cos, sin = np.cos(angle), np.sin(angle)
    quarter = (4 * turns) % n_fft == 0
    cos[quarter] = np.round(cos[quarter])
    sin[quarter] = np.round(sin[quarter])
    return cos, sin
