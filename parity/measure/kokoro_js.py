"""kokoro-js (npm), the browser client, speaking under Node.js on WebAssembly.

The Node side is ``parity/measure/kokoro-js/speak.mjs`` with its own lockfile, installed with
``npm ci --ignore-scripts`` (onnxruntime-node, which transformers.js pulls in, downloads in its
install script; the WebAssembly path never uses it). The model goes in a folder written by
``parity.builders.kokoro_js_folder``; the voices are kokoro-js's own ``voices/*.bin``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity.builders.voices import official_pack, voice_of
from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore, source_digest
from parity.core.node_side import node_package_unavailable

__all__ = [
    "JS_DIR",
    "KokoroJsRun",
    "kokoro_js_unavailable",
    "kokoro_js_voice",
    "speak_kokoro_js",
    "speak_model_file",
    "spoken_by_kokoro_js",
]

JS_DIR = Path(__file__).with_name("kokoro-js")
SCRIPT = JS_DIR / "speak.mjs"
INSTALL = f"npm ci --prefix {JS_DIR} --ignore-scripts"


def kokoro_js_voice(voice: str) -> np.ndarray:
    """kokoro-js's own voice pack ``voice``: [510, 256], one style row per phoneme count (read
    by ``parity.builders.voices.official_pack``, the held-out set's reader)."""
    return official_pack(voice)[:, 0, :]


def kokoro_js_unavailable() -> str | None:
    """Why kokoro-js cannot run here, or None when it can."""
    return node_package_unavailable(JS_DIR, "kokoro-js", INSTALL, "run kokoro-js")


@dataclass(frozen=True)
class KokoroJsRun:
    """What kokoro-js made of each request, and how long each ``generate_from_ids`` took."""

    waveforms: list[np.ndarray]
    seconds: list[float]
    load_seconds: float
    versions: dict[str, str]


def speak_kokoro_js(
    root: Path,
    model: str,
    requests: Sequence[KokoroInput],
    *,
    dtype: str = "fp32",
    threads: int = 1,
    timeout: float = 1800.0,
) -> KokoroJsRun:
    """Have kokoro-js load ``root/model`` as ``dtype`` and speak each request's phoneme ids
    in its trained voice (kokoro-js picks the style row from the length, as kokoro does)."""
    unavailable = kokoro_js_unavailable()
    if unavailable:
        raise ParityError(unavailable)
    with tempfile.TemporaryDirectory(prefix="kokoro-js-") as scratch:
        folder = Path(scratch)
        payload = [
            {"ids": r.input_ids[0].tolist(), "voice": voice_of(r), "speed": r.speed}
            for r in requests
        ]
        (folder / "requests.json").write_text(json.dumps(payload), "utf-8")
        command = [
            "node",
            str(SCRIPT),
            str(root),
            model,
            dtype,
            str(threads),
            str(folder / "requests.json"),
            str(folder),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        answer = json.loads(lines[-1]) if lines else {}
        if done.returncode or "error" in answer or not lines:
            why = answer.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ParityError(f"kokoro-js could not speak {root / model} ({dtype}): {why}")
        waveforms = [
            np.fromfile(folder / f"{index}.f32", dtype="<f4") for index in range(len(requests))
        ]
    return KokoroJsRun(
        waveforms, list(answer["seconds"]), float(answer["load_seconds"]), answer["versions"]
    )


def speak_model_file(
    model_path: Path,
    vocab: Mapping[str, int],
    requests: Sequence[KokoroInput],
    *,
    dtype: str = "fp32",
    threads: int = 1,
) -> KokoroJsRun:
    """``speak_kokoro_js`` on one of our ONNX files, put in a scratch kokoro-js folder."""
    from parity.builders.kokoro_js_folder import write_model_folder

    with tempfile.TemporaryDirectory(prefix="kokoro-js-model-") as root:
        write_model_folder(model_path, Path(root) / "model", vocab, dtype)
        return speak_kokoro_js(Path(root), "model", requests, dtype=dtype, threads=threads)


def spoken_by_kokoro_js(
    runs: RunStore,
    model_path: Path,
    vocab: Mapping[str, int],
    requests: Sequence[KokoroInput],
    dtype: str = "fp32",
) -> list[np.ndarray]:
    """kokoro-js's waveforms for ``requests`` from ``model_path`` (in a kokoro-js folder as
    ``dtype``), from the run store when the same file, requests and client were heard before.
    Timings are not stored: they belong to one run (``speak_kokoro_js``)."""
    from parity.core.cache import content_digest

    def compute() -> dict[str, np.ndarray]:
        spoken = speak_model_file(model_path, vocab, requests, dtype=dtype)
        return {str(index): waveform for index, waveform in enumerate(spoken.waveforms)}

    parts = {
        "model": content_digest(Path(model_path)),
        "dtype": dtype,
        "vocab": dict(vocab),
        "requests": [(r.name, r.phonemes, r.speed) for r in requests],
        # The lockfile pins kokoro-js, transformers.js and onnxruntime-web.
        "code": source_digest(
            (
                "builders/kokoro_js_folder.py",
                "measure/kokoro_js.py",
                "measure/kokoro-js/speak.mjs",
                "measure/kokoro-js/package-lock.json",
            ),
            (),
        ),
    }
    spoken = runs.arrays("kokoro-js", parts, compute)
    return [spoken[str(index)] for index in range(len(requests))]
