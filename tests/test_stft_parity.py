"""parity.builders.stft.STFT after TorchScript export, in ONNX Runtime, against torch.stft/istft."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from parity.builders.stft import STFT, export_stft
from parity.core.ort_session import open_session
from parity.judge.tolerances import STFT_ONNX_ROUND_TRIP_REL, STFT_SPECTRUM_REL

pytestmark = pytest.mark.parity


@st.composite
def exported_configurations(draw: st.DrawFn) -> tuple[int, int, int]:
    n_fft = draw(st.integers(4, 48))
    win = draw(st.integers(max(2, n_fft // 2), n_fft))
    hop = draw(st.integers(1, max(1, win // 2)))
    return n_fft, hop, win


def _export(stft: STFT, path: Path) -> object:
    noted = export_stft(stft, str(path))
    # A TracerWarning would mean the trace may have fixed a length-dependent value.
    assert not [line for line in noted if line.startswith("TracerWarning")], noted
    return open_session(path)


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    exported_configurations(), st.lists(st.integers(0, 900), min_size=2, max_size=3, unique=True)
)
@example((20, 5, 20), [0, 37, 900])
def test_parity_stft_in_onnxruntime_matches_torch_at_any_length(
    tmp_path_factory: pytest.TempPathFactory,
    configuration: tuple[int, int, int],
    extra_lengths: list[int],
) -> None:
    n_fft, hop, win = configuration
    session = _export(STFT(n_fft, hop, win), tmp_path_factory.mktemp("stft") / "stft.onnx")
    window = torch.hann_window(win, periodic=True)
    for extra in extra_lengths:  # one export, several lengths: the length axis is dynamic
        length = n_fft // 2 + 1 + extra
        signal = torch.randn(2, length, generator=torch.Generator().manual_seed(length))
        magnitude, phase, restored = session.run(None, {"waveform": signal.numpy()})  # type: ignore[attr-defined]
        reference = torch.stft(
            signal, n_fft, hop, win, window=window, center=True, return_complex=True
        ).numpy()
        ours = magnitude * np.exp(1j * phase)
        assert ours.shape == reference.shape
        peak = float(signal.abs().max())
        assert np.abs(ours - reference).max() <= STFT_SPECTRUM_REL * n_fft * peak
        expected = torch.istft(
            torch.from_numpy(reference), n_fft, hop, win, window=window, center=True
        ).numpy()
        assert restored.shape == (2, 1, expected.shape[-1])
        assert np.abs(restored[:, 0] - expected).max() <= STFT_ONNX_ROUND_TRIP_REL * peak
