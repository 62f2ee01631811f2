"""A file that crashes ONNX Runtime as it builds a session (parity.core.session_probe): found in
a child process, named in one line with the options it opens with, and every later session on
it opened so. The crashes here are planted (a child that kills itself unless an optimizer is
disabled); the real one, ORT 1.32 on the trained float16 file, is in docs/webgpu.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.cli.common import kokoro_file
from parity.core import ort_session, session_probe
from parity.core.errors import ParityError
from parity.core.ort_session import open_session
from parity.core.session_probe import probe_cpu_session

# A child that segfaults as ORT 1.32 does on the trained float16 file: unless NchwcTransformer
# is disabled (argv[3:]).
_CRASH_UNLESS_NCHWC_OFF = """
import os, signal, sys
if "NchwcTransformer" not in sys.argv[3:]:
    os.kill(os.getpid(), signal.SIGSEGV)
"""
_CRASH_ALWAYS = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"


@pytest.fixture
def small_model(tmp_path: Path) -> Path:
    weight = np.ones((4, 4, 3), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16])],
        [numpy_helper.from_array(weight, "w")],
    )
    path = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(autouse=True)
def no_workarounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_session, "_WORKAROUNDS", {})


def test_a_file_that_opens_needs_no_workaround(small_model: Path, tmp_path: Path) -> None:
    probe = probe_cpu_session(small_model, tmp_path / "cache")
    assert probe.crash is None
    assert probe.workaround is None
    assert probe.finding() is None


def test_a_crash_is_named_and_every_later_session_opens_with_the_workaround(
    small_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_probe, "_CHILD", _CRASH_UNLESS_NCHWC_OFF)
    probe = probe_cpu_session(small_model, tmp_path / "cache")
    assert probe.crash == "SIGSEGV"
    assert probe.workaround == session_probe.LADDER[0]
    finding = probe.finding()
    assert finding is not None
    assert "crashes (SIGSEGV)" in finding
    assert "with NchwcTransformer disabled" in finding
    built: list[dict[str, Any]] = []
    real = ort.InferenceSession

    def spy(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    open_session(small_model)
    open_session(small_model, model_bytes=small_model.read_bytes())  # an edit, by its path
    assert [kwargs["disabled_optimizers"] for kwargs in built] == [["NchwcTransformer"]] * 2


def test_the_answer_is_kept_by_content(
    small_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_probe, "_CHILD", _CRASH_UNLESS_NCHWC_OFF)
    first = probe_cpu_session(small_model, tmp_path / "cache")
    monkeypatch.setattr(session_probe, "_child_crash", lambda *_: pytest.fail("ran a child"))
    assert probe_cpu_session(small_model, tmp_path / "cache") == first


def test_a_crash_at_every_level_is_one_error_line(
    small_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_probe, "_CHILD", _CRASH_ALWAYS)
    with pytest.raises(ParityError, match=r"crashes \(SIGSEGV\) .* at every optimization level"):
        probe_cpu_session(small_model, tmp_path / "cache")


def test_the_command_line_prints_the_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Kokoro's interface (ids, style, speed -> waveform, durations) and nothing behind it.
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input_ids"], ["waveform"], to=TensorProto.FLOAT),
            helper.make_node("Identity", ["input_ids"], ["durations"]),
        ],
        "kokoro",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "L"]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
            helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, "L"]),
            helper.make_tensor_value_info("durations", TensorProto.INT64, [1, "L"]),
        ],
    )
    path = tmp_path / "kokoro.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(session_probe, "_CHILD", _CRASH_UNLESS_NCHWC_OFF)
    kokoro_file(path)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("parity: kokoro.onnx: ONNX Runtime")
    assert "with NchwcTransformer disabled" in line
