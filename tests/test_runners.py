"""Runners refuse broken model files with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.builders.stft import STFT, export_stft
from parity.core.errors import ParityError
from parity.core.ort_session import open_session
from parity.judge.runners import OrtRunner


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "stft.onnx"
    export_stft(STFT(20, 5, 20), str(path))
    return path


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_onnx_file_is_one_clear_line(
    tmp_path: Path, small_model: Path, damage: str
) -> None:
    path = tmp_path / "broken.onnx"
    data = small_model.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"\x00not onnx" * 50, "empty": b""}[damage]
    )
    with pytest.raises(ParityError, match=r"cannot load it|not a readable ONNX model") as raised:
        open_session(path)
    assert str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_onnx_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ParityError, match="parity export"):
        open_session(tmp_path / "nothing.onnx")


def test_a_model_without_kokoro_interface_is_refused(small_model: Path) -> None:
    with pytest.raises(ParityError, match="not a Kokoro graph"):
        OrtRunner(small_model)


def test_sessions_stop_spinning_when_a_run_returns(small_model: Path) -> None:
    """Timings interleave models: a session whose workers went on spinning after its run took
    a core from the next model's run (docs/latency.md: an int8 conv 26 ms alone, 52 ms after a
    float session's run)."""
    session = open_session(small_model, threads=2)
    options = session.get_session_options()  # type: ignore[attr-defined]
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
