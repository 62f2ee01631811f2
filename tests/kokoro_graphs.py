"""Small ONNX graphs with Kokoro's interface (input_ids, style, speed -> waveform), shared by
the tests of the routines that transform or time whole models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from parity.core.config import default_inputs
from parity.core.inputs import KokoroInput, load_input_set
from parity.core.spec import load_config

FIXTURE_INPUTS = default_inputs()


def fixture_sentences(*names: str) -> list[KokoroInput]:
    """The named sentences of the package's inputs, tokenised with the full model's vocab."""
    return load_input_set(FIXTURE_INPUTS).sentences(load_config("full")["vocab"], names)


def timed_tiny_kokoro(path: Path) -> Path:
    """``tiny_kokoro`` with a seeded fragile kernel: a small whole model to time or profile."""
    kernel = np.random.default_rng(1).normal(0, 0.3, (1, 8, 3)).astype(np.float32)
    return tiny_kokoro(path, kernel)


def _silent_first_channel(rng: np.random.Generator) -> np.ndarray:
    """The first Conv's kernel, with output channel 0 all zero: /dec/b/ reads zeros there."""
    kernel = rng.normal(0, 0.3, (8, 16, 3)).astype(np.float32)
    kernel[0] = 0
    return kernel


def tiny_kokoro(path: Path, fragile: np.ndarray) -> Path:
    """Kokoro's interface; four weight layers in three scopes, /dec/b/ holding ``fragile``."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["e"], name="/text/Gather"),
        helper.make_node("MatMul", ["e", "w1"], ["h"], name="/enc/proj/MatMul"),
        helper.make_node("MatMul", ["style", "w2"], ["s"], name="/enc/style/MatMul"),
        helper.make_node("Add", ["h", "s"], ["hs"], name="/enc/Add"),
        helper.make_node("Transpose", ["hs"], ["t"], name="/Transpose", perm=[0, 2, 1]),
        helper.make_node("Conv", ["t", "k1"], ["c"], name="/dec/a/Conv", pads=[1, 1]),
        helper.make_node("Conv", ["c", "k2"], ["c2"], name="/dec/b/Conv", pads=[1, 1]),
        helper.make_node("Mul", ["c2", "speed"], ["m"], name="/Mul"),
        helper.make_node("Reshape", ["m", "flat"], ["samples"], name="/Reshape"),
        # 64 copies: long enough for log-mel frames (n_fft 1024) on the CLI's default loss
        helper.make_node("Tile", ["samples", "copies"], ["waveform"], name="/Tile"),
    ]
    graph = helper.make_graph(
        nodes,
        "sweep",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "L"]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
            helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N"])],
        [
            weight("embedding", 178, 16),
            weight("w1", 16, 16),
            weight("w2", 256, 16),
            numpy_helper.from_array(_silent_first_channel(rng), "k1"),
            numpy_helper.from_array(fragile, "k2"),
            numpy_helper.from_array(np.array([-1], np.int64), "flat"),
            numpy_helper.from_array(np.array([64], np.int64), "copies"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def sweep_session_args(model: Path, work: Path) -> list[str]:
    """The arguments of a pytest session that sweeps ``model`` (``parity.search.sweep_items``)
    at depth 1 with the package's inputs, its cache under ``work``; add ``--parity-sweep-out``."""
    return [
        "--pyargs",
        "parity.search.sweep_items",
        f"--parity-sweep-model={model}",
        "--parity-sweep-threshold=0.05",
        "--parity-sweep-budget=0.05",
        "--parity-sweep-depth=1",
        f"--parity-inputs={default_inputs()}",
        f"--parity-cache-dir={work / 'cache'}",
        "-p",
        "no:cacheprovider",
    ]
