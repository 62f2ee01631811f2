"""Comparators: pure functions that judge a candidate against a reference and return results.

Counts, then shapes, then values; NaN or inf in a candidate is always a failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from parity.judge.metrics import (
    WaveformError,
    high_frequency_ratio,
    log_mel_distance,
    waveform_error,
)

__all__ = [
    "DurationComparison",
    "OutputGain",
    "TensorComparison",
    "TokenMove",
    "WaveformComparison",
    "compare_durations",
    "compare_spectra",
    "compare_tensors",
    "compare_waveforms",
    "least_squares_gain",
    "match_layout",
]


@dataclass(frozen=True)
class TokenMove:
    """A token whose predicted duration (in 25 ms frames) differs between the two models."""

    position: int
    symbol: str
    reference: int
    candidate: int
    # Both durations before rounding (frames), where both models expose them.
    unrounded: tuple[float, float] | None = None

    def __str__(self) -> str:
        moved = f"#{self.position} {self.symbol!r}: {self.reference}->{self.candidate}"
        if self.unrounded is None:
            return moved
        return f"{moved} (unrounded {self.unrounded[0]:.3f}->{self.unrounded[1]:.3f})"

    def at_rounding_boundary(self, margin: float) -> bool:
        """Whether the reference lies within ``margin`` frames of the rounding boundary it
        crossed and the candidate within ``margin`` of it: a difference below the precision's
        own drift that only rounding made into a frame."""
        if self.unrounded is None:
            return False
        reference, candidate = self.unrounded
        boundary = min(self.reference, self.candidate) + 0.5
        return abs(reference - boundary) <= margin and abs(candidate - reference) <= margin


@dataclass(frozen=True)
class DurationComparison:
    """Per-token durations: equal or not, and which tokens moved."""

    moved: tuple[TokenMove, ...]
    reference_total: int
    candidate_total: int
    length_mismatch: bool = False

    @property
    def equal(self) -> bool:
        return not self.moved and not self.length_mismatch

    def at_rounding_boundary(self, margin: float) -> bool:
        """Whether every token that moved did so at a rounding boundary
        (``TokenMove.at_rounding_boundary``); False when none moved."""
        return (
            bool(self.moved)
            and not self.length_mismatch
            and all(move.at_rounding_boundary(margin) for move in self.moved)
        )

    def describe(self, limit: int = 8) -> str:
        if self.length_mismatch:
            return "durations have different token counts"
        if self.equal:
            return f"durations equal ({self.reference_total} frames)"
        shown = ", ".join(str(move) for move in self.moved[:limit])
        more = f" and {len(self.moved) - limit} more" if len(self.moved) > limit else ""
        return (
            f"{len(self.moved)} token(s) moved ({self.reference_total}->{self.candidate_total} "
            f"frames): {shown}{more}"
        )


def compare_durations(
    reference: np.ndarray | None,
    candidate: np.ndarray | None,
    symbols: Sequence[str] | None = None,
    unrounded: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> DurationComparison:
    """Token by token; a model that gives no durations (kokoro-onnx's) compares as unequal.
    ``unrounded``: both models' durations before rounding, where known, for each move."""
    if reference is None or candidate is None:
        return DurationComparison((), 0, 0, length_mismatch=True)
    ref, cand = np.asarray(reference).reshape(-1), np.asarray(candidate).reshape(-1)
    if ref.shape != cand.shape:
        return DurationComparison((), int(ref.sum()), int(cand.sum()), length_mismatch=True)
    pairs = _unrounded_pairs(*unrounded, tokens=ref.size)

    def move(i: int) -> TokenMove:
        symbol = symbols[i] if symbols and i < len(symbols) else "?"
        return TokenMove(i, symbol, int(ref[i]), int(cand[i]), pairs[i] if pairs else None)

    moved = tuple(move(i) for i in map(int, np.flatnonzero(ref != cand)))
    return DurationComparison(moved, int(ref.sum()), int(cand.sum()))


def _unrounded_pairs(
    reference: np.ndarray | None, candidate: np.ndarray | None, *, tokens: int
) -> list[tuple[float, float]] | None:
    """Each token's (reference, candidate) duration before rounding; None unless both
    models give one per token."""
    if reference is None or candidate is None:
        return None
    ref, cand = np.asarray(reference).reshape(-1), np.asarray(candidate).reshape(-1)
    if not ref.size == cand.size == tokens:
        return None
    return [(float(r), float(c)) for r, c in zip(ref, cand, strict=True)]


@dataclass(frozen=True)
class TensorComparison:
    """Error statistics of one tensor pair, after matching the candidate's layout."""

    shape: tuple[int, ...]
    max_abs: float
    rel: float  # max |a - b| / max |a|
    rms_rel: float
    cosine: float
    layout: str = "same"
    finite: bool = True

    def summary(self) -> str:
        return (
            f"shape {list(self.shape)} max_abs {self.max_abs:.3g} rel {self.rel:.3g} "
            f"rms_rel {self.rms_rel:.3g} cos {self.cosine:.6f}"
            + ("" if self.layout == "same" else f" [{self.layout}]")
            + ("" if self.finite else " NON-FINITE")
        )


def _layout_candidates(
    reference: np.ndarray, candidate: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """Ways ``candidate`` may hold the same tensor as ``reference`` in another layout.

    Unit axes squeezed, any axis permutation (batch-first vs time-first, channels last),
    and ONNX LSTM's Y [T, directions, B, H] as PyTorch's batch-first [B, T, directions * H].
    """
    options: list[tuple[str, np.ndarray]] = []
    if candidate.shape == reference.shape:
        options.append(("same", candidate))
    squeezed = np.squeeze(candidate)
    if squeezed.shape == np.squeeze(reference).shape and squeezed.shape != candidate.shape:
        options.append(("squeezed", squeezed.reshape(reference.shape)))
    if candidate.ndim == 4 and reference.ndim == 3:
        steps, directions, batch, hidden = candidate.shape
        lstm = candidate.transpose(2, 0, 1, 3).reshape(batch, steps, directions * hidden)
        if lstm.shape == reference.shape:
            options.append(("lstm [T,D,B,H]->[B,T,D*H]", lstm))
    if candidate.ndim == reference.ndim and candidate.ndim <= 4 and not options:
        for order in itertools.permutations(range(candidate.ndim)):
            permuted = candidate.transpose(order)
            if order != tuple(range(candidate.ndim)) and permuted.shape == reference.shape:
                options.append((f"transpose{order}", permuted))
    return options


def match_layout(
    reference: np.ndarray, candidate: np.ndarray
) -> tuple[TensorComparison, np.ndarray] | None:
    """The candidate seen in the reference's layout (best of the possible ones), with stats."""
    ref = np.asarray(reference, dtype=np.float64)
    best: tuple[TensorComparison, np.ndarray] | None = None
    for layout, view in _layout_candidates(ref, np.asarray(candidate)):
        cand = view.astype(np.float64)
        finite = bool(np.isfinite(cand).all())
        difference = np.abs(ref - cand)
        peak = float(np.max(np.abs(ref))) if ref.size else 0.0
        max_abs = float(np.max(difference)) if ref.size else 0.0
        ref_norm, cand_norm = float(np.linalg.norm(ref)), float(np.linalg.norm(cand))
        cosine = (
            float(np.dot(ref.ravel(), cand.ravel()) / (ref_norm * cand_norm))
            if ref_norm and cand_norm
            else float(ref_norm == cand_norm)
        )
        result = TensorComparison(
            shape=tuple(ref.shape),
            max_abs=max_abs if finite else float("inf"),
            rel=(max_abs / peak if peak else max_abs) if finite else float("inf"),
            rms_rel=(float(np.linalg.norm(ref - cand)) / ref_norm if ref_norm else max_abs)
            if finite
            else float("inf"),
            cosine=cosine if finite else float("nan"),
            layout=layout,
            finite=finite,
        )
        if best is None or result.rms_rel < best[0].rms_rel:
            best = (result, view)
    return best


def compare_tensors(reference: np.ndarray, candidate: np.ndarray) -> TensorComparison | None:
    """Best-matching layout's statistics, or None when no layout gives the reference shape."""
    matched = match_layout(reference, candidate)
    return matched[0] if matched else None


@dataclass(frozen=True)
class WaveformComparison:
    """Audio-level distances between two waveforms (sample errors only if equally long)."""

    mel_distance: float
    error: WaveformError | None
    hf_reference: float
    hf_candidate: float
    finite: bool

    def summary(self) -> str:
        parts = [f"log-mel {self.mel_distance:.4f}"]
        if self.error is not None:
            parts += [f"rms_rel {self.error.rms_rel:.3g}", f"max_rel {self.error.max_rel:.3g}"]
        parts.append(f">6kHz {self.hf_reference:.4f}->{self.hf_candidate:.4f}")
        if not self.finite:
            parts.append("NON-FINITE")
        return ", ".join(parts)


def compare_waveforms(reference: np.ndarray, candidate: np.ndarray) -> WaveformComparison:
    finite = bool(np.isfinite(candidate).all())
    same_length = reference.shape == candidate.shape
    if not finite:
        return WaveformComparison(
            float("inf"), None, high_frequency_ratio(reference), float("nan"), False
        )
    return WaveformComparison(
        mel_distance=log_mel_distance(reference, candidate),
        error=waveform_error(reference, candidate) if same_length else None,
        hf_reference=high_frequency_ratio(reference),
        hf_candidate=high_frequency_ratio(candidate),
        finite=True,
    )


@dataclass(frozen=True)
class OutputGain:
    """How loud a graph plays against PyTorch, measured before any sound figure: the graph's
    waveform is ``factor`` times PyTorch's (least squares on frames that line up). The
    published kokoro-onnx graph plays 1.5x: its iSTFT skips torch.istft's window sum."""

    factor: float
    method: str

    @property
    def db(self) -> float:
        return float(20 * np.log10(abs(self.factor))) if self.factor else float("-inf")

    def describe(self) -> str:
        return f"gain x{self.factor:.4f} ({self.db:+.2f} dB, {self.method})"


def least_squares_gain(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The factor g that makes ``g * reference`` closest to ``candidate`` (same length)."""
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    cand = np.asarray(candidate, dtype=np.float64).reshape(-1)
    energy = float(np.dot(ref, ref))
    if ref.shape != cand.shape or energy == 0.0 or not np.isfinite(cand).all():
        return float("nan")
    return float(np.dot(ref, cand) / energy)


def compare_spectra(reference: np.ndarray, candidate: np.ndarray) -> TensorComparison | None:
    """Two STFTs held as ``cat(magnitude, phase)`` along axis 1, compared as complex numbers:
    a phase of +pi and one of -pi agree, and the phase of a bin with no energy weighs
    nothing (a phase alone is discontinuous in its signal)."""
    matched = match_layout(reference, candidate)
    if matched is None:
        return None
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(matched[1], dtype=np.float64)
    bins = ref.shape[1] // 2
    a = ref[:, :bins] * np.exp(1j * ref[:, bins:])
    b = cand[:, :bins] * np.exp(1j * cand[:, bins:])
    finite = bool(np.isfinite(b).all())
    difference = np.abs(a - b)
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    inner = float(np.real(np.vdot(a, b)))
    return TensorComparison(
        shape=tuple(ref.shape),
        max_abs=float(difference.max()) if finite else float("inf"),
        rel=float(difference.max() / np.abs(a).max()) if finite and a.size else float("inf"),
        rms_rel=float(np.linalg.norm(a - b) / norm_a) if finite and norm_a else float("inf"),
        cosine=inner / (norm_a * norm_b) if norm_a and norm_b else float(norm_a == norm_b),
        layout="complex" if matched[0].layout == "same" else f"complex, {matched[0].layout}",
        finite=finite,
    )
