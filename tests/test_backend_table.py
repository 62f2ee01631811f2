"""``parity report --backends``: one table of files by backend from compare's JSON runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from parity.cli import EXIT_BAD_INPUT, main
from parity.report.backend_table import load_cells, render_cells


def staged(moved: int, rms: float, mel: float, hf: tuple[float, float], free: float) -> dict:
    return {
        "durations": {"moved": [{"token": 1}] * moved},
        "forced": {
            "mel_distance": mel,
            "error": {"rms_rel": rms},
            "hf_reference": hf[0],
            "hf_candidate": hf[1],
        },
        "free": {"mel_distance": free},
    }


def walk(*within: tuple[str, bool]) -> dict:
    return {"rows": [{"module": module, "within": ok} for module, ok in within]}


def write(folder: Path, name: str, value: object) -> None:
    (folder / name).write_text(json.dumps(value))


def test_cells_take_the_worst_request_and_name_the_first_module(tmp_path: Path) -> None:
    write(
        tmp_path,
        "fp32.webgpu.json",
        [staged(0, 4e-4, 4e-4, (0.4, 0.4), 0.2), staged(2, 9e-4, 1e-3, (0.4, 0.45), 0.1)],
    )
    write(
        tmp_path,
        "fp32.webgpu.walk.json",
        [walk(("bert", True), ("decoder.encode", False), ("decoder", False))],
    )
    excused = {**staged(1, 3e-6, 0.0, (0.4, 0.4), 0.05), "timing_forced": True}
    write(tmp_path, "fp32.cpu.json", [staged(0, 2e-6, 0.0, (0.4, 0.4), 0.05), excused])
    write(tmp_path, "fp32.cpu.walk.json", [walk(("bert", True))])
    (tmp_path / "fp16.webgpu.err").write_text(
        "parity: error: webgpu: fp16.onnx: needs shader-f16\n"
    )
    cells = load_cells(tmp_path)
    assert [(c.file, c.provider) for c in cells] == [
        ("fp16", "webgpu"),
        ("fp32", "cpu"),
        ("fp32", "webgpu"),
    ]
    webgpu = cells[2]
    assert webgpu.durations == "moved in 1/2 (2 tokens at most)"
    assert webgpu.forced_rms_rel == pytest.approx(9e-4)
    assert webgpu.static == ">6 kHz +0.0500"
    assert webgpu.free_mel == pytest.approx(0.2)
    assert webgpu.first_module == "decoder.encode"
    assert cells[1].first_module == "none"
    assert cells[0].stopped == "webgpu: fp16.onnx: needs shader-f16"
    table = render_cells(cells)
    assert "| fp16 | webgpu | stopped: webgpu: fp16.onnx: needs shader-f16 |" in table
    excused_cell = "moved in 1/2 (1 token at most; 1 at a rounding boundary, then forced)"
    assert cells[1].durations == excused_cell
    assert f"| fp32 | cpu | {excused_cell} | 3e-06 |" in table


def test_a_walk_replayed_op_by_op_names_the_ops_out(tmp_path: Path) -> None:
    """``parity compare --intermediate`` on a browser provider appends the op replay of its
    first module to the walk's JSON; the cell names the op types out beside the module."""
    write(tmp_path, "fp16.webgpu-dawn.json", [staged(0, 2e-2, 1e-2, (0.4, 0.4), 0.2)])
    replay = {
        "scope": "/decoder/generator/noise_res.0/",
        "rows": [
            {"op_type": "Conv", "within": False},
            {"op_type": "Sin", "within": True},
            {"op_type": "Conv", "within": False},
        ],
    }
    module = walk(("bert", True), ("decoder.generator.noise_res.0", False))
    write(tmp_path, "fp16.webgpu-dawn.walk.json", [module, replay])
    (cell,) = load_cells(tmp_path)
    assert cell.first_module == "decoder.generator.noise_res.0 (ops: Conv)"


def test_a_quantized_file_gives_its_verdicts_worst_request(tmp_path: Path) -> None:
    quality = {
        "variant": "int8.onnx",
        "requests": ["held-yes/af_heart", "held-yes/jf_alpha"],
        "moved_tokens": [0.0, 0.143],
        "aligned_mel": [0.115, 0.148],
        "floor_rise_db": [0.22, 0.31],
        "hf_ratio": [0.99, 1.07],
        "mel": [0.5, 0.7],
    }
    write(tmp_path, "int8.wasm.json", [quality])
    (cell,) = load_cells(tmp_path)
    assert cell.requests == 2
    assert cell.durations == "14% of tokens moved (then forced)"
    assert cell.aligned_mel == pytest.approx(0.148)
    assert cell.static == "floor +0.31 dB, >6 kHz x1.07"
    assert cell.first_module == "not run"


def test_a_folder_without_runs_is_one_clear_line(tmp_path: Path, capsys) -> None:
    assert main(["report", "--backends", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "no FILE.PROVIDER.json runs; run `make webgpu` first" in capsys.readouterr().err


def test_a_request_whose_audio_was_not_finite_is_the_cells_worst(tmp_path: Path) -> None:
    """A float16 file that reaches inf records no share above 6 kHz; the cell says so rather
    than averaging it away or stopping the report."""
    broken = staged(0, 1e-3, 1e-3, (0.4, 0.4), 0.1)
    broken["forced"] = {**broken["forced"], "hf_candidate": None, "mel_distance": None}
    write(tmp_path, "fp16.webgpu.json", [staged(0, 1e-3, 1e-3, (0.4, 0.41), 0.1), broken])
    (cell,) = load_cells(tmp_path)
    assert cell.static == "not finite"
    assert cell.aligned_mel is not None
    assert not math.isfinite(cell.aligned_mel)
    assert "| not finite | not finite | 0.1 |" in render_cells([cell])


def test_a_quantized_file_whose_audio_was_not_finite_says_so(tmp_path: Path) -> None:
    """The verdict records a request whose audio was inf as None on each sound axis."""
    quality = {
        "variant": "int8.onnx",
        "requests": ["held-yes/af_heart", "held-yes/jf_alpha"],
        "moved_tokens": [0.0, 0.0],
        "aligned_mel": [0.115, None],
        "floor_rise_db": [0.22, None],
        "hf_ratio": [0.99, None],
        "mel": [0.5, None],
    }
    write(tmp_path, "int8.webgpu.json", [quality])
    (cell,) = load_cells(tmp_path)
    assert cell.static == "not finite"
    assert "| equal | - | not finite | not finite | not finite |" in render_cells([cell])
