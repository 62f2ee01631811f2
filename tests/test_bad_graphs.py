"""Every ``parity`` command that reads an ONNX file answers a bad one with one line on stderr
and exit code 2: bytes that are not ONNX, an empty file, an ONNX graph that is not Kokoro,
and Kokoro graphs with an input missing or one too many. Nothing is left half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx import TensorProto, helper, save

from parity.cli import main

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
KOKORO_INPUTS = [("input_ids", INT64, [1, "L"]), ("style", FLOAT, [1, 256]), ("speed", FLOAT, [1])]


def _graph(path: Path, inputs: list[tuple[str, int, list]]) -> None:
    nodes = [helper.make_node("Cast", [inputs[0][0]], ["waveform"], to=FLOAT, name="/cast")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info("waveform", FLOAT, ["n"])],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each bad file and what its error line must say."""
    files = {
        "not-onnx": (folder / "not-onnx.onnx", "not a readable ONNX model"),
        "empty": (folder / "empty.onnx", "not a Kokoro graph"),
        "not-kokoro": (folder / "classifier.onnx", "not a Kokoro graph"),
        "missing-input": (folder / "no-speed.onnx", "a Kokoro graph needs speed"),
        "extra-input": (folder / "extra.onnx", "extra input(s) pitch"),
    }
    files["not-onnx"][0].write_bytes(b"\x08\x07garbage" * 100)
    files["empty"][0].write_bytes(b"")
    _graph(files["not-kokoro"][0], [("image", FLOAT, [1, 3, 224, 224])])
    _graph(files["missing-input"][0], KOKORO_INPUTS[:2])
    _graph(files["extra-input"][0], [*KOKORO_INPUTS, ("pitch", FLOAT, [1])])
    return files


COMMANDS = {
    "compare": ["compare", "{model}", "--preset", "tiny"],
    "compare-intermediate": ["compare", "{model}", "--preset", "tiny", "--intermediate"],
    "fp16": ["fp16", "{model}", "-o", "{out}"],
    "quantize": ["quantize", "{model}", "-o", "{out}", "--mode", "dynamic"],
    "bench": ["bench", "{model}", "--providers", "cpu", "--repeats", "1"],
    "profile": ["profile", "{model}", "--provider", "cpu"],
    "sensitivity": ["sensitivity", "{model}", "--transform", "fp16", "--out-dir", "{out_dir}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("bad", ["not-onnx", "empty", "not-kokoro", "missing-input", "extra-input"])
def test_a_bad_file_is_one_line_and_exit_2(
    command: str, bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, message = _bad_files(tmp_path)[bad]
    out, out_dir = tmp_path / "out.onnx", tmp_path / "out"
    argv = [a.format(model=model, out=out, out_dir=out_dir) for a in COMMANDS[command]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("parity: error:"), err
    assert message in err, err
    assert "\n" not in err, err
    assert not out.exists()
    assert not out_dir.exists() or not any(out_dir.iterdir())
