"""kokoro-js (npm), the browser client: under Node.js on WebAssembly, and with ``device:
"webgpu"`` in headless Chromium or, on the ``dawn`` adapter, under Node.js on Dawn.

The Node side is ``parity/measure/kokoro-js/speak.mjs`` with its own lockfile, installed with
``npm ci --ignore-scripts`` (onnxruntime-node, which transformers.js pulls in, downloads in its
install script; the WebAssembly path never uses it). On WebGPU, ``kokoro-js/browser.mjs`` loads
the same modules in a page (``page.mjs``) as a site that bundles kokoro-js does; on Dawn (the
WebGPU implementation inside Chromium, on the system's Vulkan driver, with the shader-f16 that
Chromium's SwiftShader lacks) ``speak.mjs`` runs them with that runtime's WebGPU build. The
model goes in a folder written by ``parity.builders.kokoro_js_folder``; the voices are
kokoro-js's own ``voices/*.bin``.
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
from parity.core.node_side import (
    DAWN_NODE_FLAGS,
    ORT_WEB_BUILDS,
    adapter_key,
    current_adapter,
    find_chromium,
    node_package_unavailable,
    on_dawn,
    ort_web_dist,
    session_unavailable,
)

__all__ = [
    "CLIENT_RUNTIME",
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
PAGE_SCRIPT = JS_DIR / "browser.mjs"
# kokoro-js's devices: "wasm" under Node.js (speak.mjs), "webgpu" in Chromium (browser.mjs) or,
# on the dawn adapter, under Node.js on Dawn (speak.mjs).
DEVICES = ("wasm", "webgpu")
INSTALL = f"npm ci --prefix {JS_DIR} --ignore-scripts"
# The onnxruntime-web build kokoro-js is given (node_side.ORT_WEB_BUILDS): its own.
CLIENT_RUNTIME = "kokoro-js"


def kokoro_js_voice(voice: str) -> np.ndarray:
    """kokoro-js's own voice pack ``voice``: [510, 256], one style row per phoneme count (read
    by ``parity.builders.voices.official_pack``, the held-out set's reader)."""
    return official_pack(voice)[:, 0, :]


def kokoro_js_unavailable() -> str | None:
    """Why kokoro-js cannot run here, or None when it can."""
    return node_package_unavailable(JS_DIR, "kokoro-js", INSTALL, "run kokoro-js")


@dataclass(frozen=True)
class KokoroJsRun:
    """What kokoro-js made of each request, and how long each ``generate_from_ids`` took
    (untimed, empty, on WebGPU: a software adapter's times say nothing of a GPU's)."""

    waveforms: list[np.ndarray]
    seconds: list[float]
    load_seconds: float | None
    versions: dict[str, str]


def speak_kokoro_js(
    root: Path,
    model: str,
    requests: Sequence[KokoroInput],
    *,
    dtype: str = "fp32",
    threads: int = 1,
    timeout: float = 1800.0,
    device: str = "wasm",
    runtime: str = CLIENT_RUNTIME,
) -> KokoroJsRun:
    """Have kokoro-js load ``root/model`` as ``dtype`` on ``device`` and speak each request's
    phoneme ids in its trained voice (kokoro-js picks the style row from the length, as
    kokoro does). ``runtime``: the onnxruntime-web build it is given (``ORT_WEB_BUILDS``),
    its own unless a control asks for parity's newer one (under Node.js only)."""
    if device not in DEVICES:
        raise ParityError(f"kokoro-js: no device {device!r}; give one of {', '.join(DEVICES)}")
    node = device == "wasm" or on_dawn(device)
    if runtime != CLIENT_RUNTIME and not node:
        raise ParityError(
            f"kokoro-js: runtime {runtime!r} is given under Node.js only (wasm, or webgpu on "
            "the dawn adapter); in Chromium the page loads kokoro-js's own"
        )
    given = [] if runtime == CLIENT_RUNTIME else [str(ort_web_dist(runtime))]
    unavailable = kokoro_js_unavailable() or (
        session_unavailable(device) if device == "webgpu" else None
    )
    if unavailable:
        raise ParityError(unavailable)
    with tempfile.TemporaryDirectory(prefix="kokoro-js-") as scratch:
        folder = Path(scratch)
        payload = [
            {"ids": r.input_ids[0].tolist(), "voice": voice_of(r), "speed": r.speed}
            for r in requests
        ]
        (folder / "requests.json").write_text(json.dumps(payload), "utf-8")
        files = [str(folder / "requests.json"), str(folder)]
        if node:
            speak = [str(SCRIPT), str(root), model, dtype, str(threads), *files, device, *given]
            command = ["node", *(DAWN_NODE_FLAGS if on_dawn(device) else ()), *speak]
        else:
            page = [str(PAGE_SCRIPT), str(root), model, dtype, device, str(threads), *files]
            command = ["node", *page, str(find_chromium()), current_adapter()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        answer = json.loads(lines[-1]) if lines else {}
        if done.returncode or "error" in answer or not lines:
            why = answer.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ParityError(
                f"kokoro-js could not speak {root / model} ({dtype}, {device}): {why[:2000]}"
            )
        waveforms = [
            np.fromfile(folder / f"{index}.f32", dtype="<f4") for index in range(len(requests))
        ]
    load = answer.get("load_seconds")
    return KokoroJsRun(
        waveforms,
        list(answer.get("seconds", [])),
        None if load is None else float(load),
        answer["versions"],
    )


def speak_model_file(
    model_path: Path,
    vocab: Mapping[str, int],
    requests: Sequence[KokoroInput],
    *,
    dtype: str = "fp32",
    threads: int = 1,
    device: str = "wasm",
    runtime: str = CLIENT_RUNTIME,
) -> KokoroJsRun:
    """``speak_kokoro_js`` on one of our ONNX files, put in a scratch kokoro-js folder."""
    from parity.builders.kokoro_js_folder import write_model_folder

    with tempfile.TemporaryDirectory(prefix="kokoro-js-model-") as root:
        write_model_folder(model_path, Path(root) / "model", vocab, dtype)
        return speak_kokoro_js(
            Path(root),
            "model",
            requests,
            dtype=dtype,
            threads=threads,
            device=device,
            runtime=runtime,
        )


def spoken_by_kokoro_js(
    runs: RunStore,
    model_path: Path,
    vocab: Mapping[str, int],
    requests: Sequence[KokoroInput],
    dtype: str = "fp32",
    *,
    device: str = "wasm",
    runtime: str = CLIENT_RUNTIME,
) -> list[np.ndarray]:
    """kokoro-js's waveforms for ``requests`` from ``model_path`` (in a kokoro-js folder as
    ``dtype``) on ``device``, from the run store when the same file, requests and client
    were heard before. Timings are not stored: they belong to one run (``speak_kokoro_js``)."""
    from parity.core.cache import content_digest

    def compute() -> dict[str, np.ndarray]:
        spoken = speak_model_file(
            model_path, vocab, requests, dtype=dtype, device=device, runtime=runtime
        )
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
                "measure/web/lines.mjs",
                "measure/kokoro-js/package-lock.json",
            ),
            (),
        ),
    }
    if device != "wasm":  # WebAssembly's keys stay as they were
        parts |= {
            "device": device,
            "adapter": adapter_key(),  # on Dawn, with its driver (another computes otherwise)
            "page": source_digest(
                (
                    "measure/kokoro-js/browser.mjs",
                    "measure/kokoro-js/page.mjs",
                    "measure/web/chromium.mjs",
                    "measure/web/dawn-adapter.mjs",
                    "measure/web/package-lock.json",
                ),
                (),
            ),
        }
    if runtime != CLIENT_RUNTIME:  # its own is pinned by the lockfile above
        parts["runtime"] = runtime
        parts["runtime code"] = source_digest((f"{ORT_WEB_BUILDS[runtime]}/package-lock.json",), ())
    spoken = runs.arrays("kokoro-js", parts, compute)
    return [spoken[str(index)] for index in range(len(requests))]
