"""onnxruntime-web in headless Chromium behind ONNX Runtime's session interface, so every runner
(staged check, localisation, verdicts) runs on WebGPU or the browser's WebAssembly unchanged.

The Node side is ``parity/measure/web/browser.mjs`` (puppeteer-core driving the system
Chromium) with ``page.mjs`` in the page. Tensors travel as raw files in a private folder that
the page reads and writes over a local HTTP server: a DevTools message would carry them as
JSON, and an intermediate of Kokoro's generator is tens of megabytes.

On a machine without a GPU, Chromium's WebGPU adapter is SwiftShader: it runs the same WGSL
shaders a hardware adapter runs, so its numbers say what WebGPU computes; its times say nothing
about a GPU. The hardware adapter (``parity.core.node_side.use_adapter``) drops the SwiftShader
flags so Chromium picks a real one. The dawn adapter runs WebGPU outside the browser:
``dawn.mjs`` gives onnxruntime-web Dawn (Chromium's WebGPU implementation) through its Node
bindings, on the system's Vulkan driver. Where that is Mesa's lavapipe it is a CPU adapter too,
and unlike SwiftShader it has shader-f16, so float16 files run on WebGPU.
"""

from __future__ import annotations

import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.config import CPU_PROVIDERS, JUDGE_PROVIDERS
from parity.core.errors import BackendLacksError, ParityError
from parity.core.node_side import (
    DAWN_NODE_FLAGS,
    DAWN_SCRIPT,
    WEB_DIR,
    NodeProcess,
    current_adapter,
    current_ort_web,
    find_chromium,
    on_dawn,
    ort_web_dist,
    session_unavailable,
)
from parity.core.ort_session import effective_threads, require_onnx_file

__all__ = ["BROWSER_PROVIDERS", "Adapter", "BrowserSession", "ValueInfo"]

# Every judging provider but ORT's own CPU one runs in the browser.
BROWSER_PROVIDERS = tuple(p for p in JUDGE_PROVIDERS if p not in CPU_PROVIDERS)
SCRIPT = WEB_DIR / "browser.mjs"

# numpy dtype -> onnxruntime-web's tensor type, and onnxruntime-web's -> ONNX Runtime's name.
WEB_TYPES: dict[np.dtype[Any], str] = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float16): "float16",
    np.dtype(np.int64): "int64",
    np.dtype(np.int32): "int32",
    np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.bool_): "bool",
}
NUMPY_TYPES: dict[str, np.dtype[Any]] = {name: dtype for dtype, name in WEB_TYPES.items()}
ORT_NAMES = {"float32": "float"}


@dataclass(frozen=True)
class ValueInfo:
    """One input or output as ONNX Runtime's ``NodeArg`` describes it (name, type, shape)."""

    name: str
    type: str
    shape: list[int | str]


@dataclass(frozen=True)
class Adapter:
    """The WebGPU adapter Chromium or Dawn offered (None fields on WebAssembly)."""

    vendor: str
    architecture: str
    fallback: bool
    f16: bool  # shader-f16: without it no float16 op runs (SwiftShader has none)

    @property
    def software(self) -> bool:
        return self.fallback or self.architecture == "swiftshader"

    def describe(self) -> str:
        kind = "software adapter" if self.software else "hardware adapter"
        return f"{self.vendor} {self.architecture} ({kind})".strip()


class BrowserSession:
    """One model in onnxruntime-web inside Chromium, on ``provider`` (webgpu or wasm); on
    WebGPU with the dawn adapter, in Node.js on Dawn instead.

    ``model_bytes`` (a graph with values exposed, say) is written to the session's own folder;
    ``path`` then names it in errors. ``threads`` are WebAssembly threads (the page is
    cross-origin isolated); on WebGPU they run only the ops WebGPU leaves to the CPU.
    """

    def __init__(
        self,
        path: Path,
        *,
        provider: str,
        threads: int = 0,
        model_bytes: bytes | None = None,
    ) -> None:
        if provider not in BROWSER_PROVIDERS:
            raise ParityError(f"browser: no provider {provider!r}; give one of {BROWSER_PROVIDERS}")
        reason = session_unavailable(provider)
        if reason is not None:
            raise ParityError(f"{provider}: {reason}")
        self.path = Path(path)
        self.provider = provider
        if model_bytes is None:
            require_onnx_file(self.path)
        self.folder = tempfile.TemporaryDirectory(prefix="parity-browser-")
        model = self.path.resolve()
        if model_bytes is not None:
            model = Path(self.folder.name) / "model.onnx"
            model.write_bytes(model_bytes)
        arguments = [str(model), self.folder.name, provider, str(effective_threads(threads))]
        dist = str(ort_web_dist(current_ort_web()))
        if on_dawn(provider):
            self.node = NodeProcess(
                DAWN_SCRIPT, [*arguments, dist], f"{provider}: {self.path}", DAWN_NODE_FLAGS
            )
        else:
            chromium = find_chromium()
            assert chromium is not None  # browser_unavailable said so
            runtime = [str(chromium), current_adapter(), dist]
            self.node = NodeProcess(SCRIPT, [*arguments, *runtime], f"{provider}: {self.path}")
        # A session nobody closes (runners are dropped, not closed) still ends its browser.
        self._finalizer = weakref.finalize(self, _close, self.node, self.folder)
        try:
            ready = self.node.receive()
        except BaseException:
            self.close()
            raise
        # The page's time around its last session.run (outputs read back included): what
        # parity bench reports for webgpu, labelled with the adapter (a software one's is the
        # CPU emulating a GPU). Nothing judged reads it.
        self.seconds: float | None = None
        self.inputs = [_value_info(value) for value in ready["inputs"]]
        self.outputs = [_value_info(value) for value in ready["outputs"]]
        found = ready.get("adapter")
        self.adapter = (
            None
            if found is None
            else Adapter(
                str(found["vendor"]),
                str(found["architecture"]),
                bool(found["fallback"]),
                bool(found.get("f16")),
            )
        )

    def get_inputs(self) -> list[ValueInfo]:
        return self.inputs

    def get_outputs(self) -> list[ValueInfo]:
        return self.outputs

    def run(self, names: list[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs ``names`` (all when None) on ``feed``, as ONNX Runtime's ``run`` gives
        them."""
        fetches = list(names) if names else [value.name for value in self.outputs]
        folder = Path(self.folder.name)
        feeds = []
        for index, (name, value) in enumerate(feed.items()):
            array = np.ascontiguousarray(value)
            if array.dtype not in WEB_TYPES:
                raise ParityError(f"{self.provider}: input {name} has dtype {array.dtype}")
            file = f"in-{index}"
            array.tofile(folder / file)
            dtype, dims = WEB_TYPES[array.dtype], list(array.shape)
            feeds.append({"name": name, "dtype": dtype, "dims": dims, "file": file})
        self.node.send({"feeds": feeds, "fetches": fetches})
        try:
            answer = self.node.receive()
        except ParityError as error:
            if "requires f16" not in str(error) or self.adapter is None:
                raise
            raise BackendLacksError(
                f"{self.provider}: {self.path}: its float16 ops need the adapter's shader-f16 "
                f"feature, which {self.adapter.describe()} lacks (SwiftShader has none); judge "
                "float16 on an adapter that has it (--webgpu-adapter dawn or hardware), or on wasm"
            ) from error
        self.seconds = float(answer["seconds"])
        arrays = []
        for output in answer["outputs"]:
            file = folder / output["file"]
            array = np.fromfile(file, dtype=NUMPY_TYPES[output["dtype"]])
            arrays.append(array.reshape([int(d) for d in output["dims"]]))
            file.unlink()
        return arrays

    def close(self) -> None:
        """End the browser and remove the session's folder."""
        self._finalizer()


def _close(node: NodeProcess, folder: tempfile.TemporaryDirectory[str]) -> None:
    node.close()
    folder.cleanup()


def _value_info(value: dict[str, Any]) -> ValueInfo:
    kind = str(value["type"])
    return ValueInfo(str(value["name"]), f"tensor({ORT_NAMES.get(kind, kind)})", value["shape"])
