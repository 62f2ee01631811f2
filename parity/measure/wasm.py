"""onnxruntime-web's WebAssembly build under Node.js: the browser's CPU backend, timed in Node.

The Node side is ``parity/measure/web/session.mjs`` with its own lockfile (``npm ci --prefix
parity/measure/web``). One Node process holds one model; requests go over stdin as JSON lines and
each answer carries the time of ``session.run`` measured inside Node, so process start,
model load and the pipe are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.node_side import WEB_DIR, NodeProcess, node_package_unavailable

__all__ = ["WEB_DIR", "WasmSession", "WasmTiming", "wasm_unavailable"]

SCRIPT = WEB_DIR / "session.mjs"


def request_message(request: KokoroInput) -> dict[str, Any]:
    """One request as the Node scripts read it (``web/feeds.mjs`` makes the tensors)."""
    return {
        "ids": request.input_ids.reshape(-1).tolist(),
        "style": request.style.reshape(-1).astype(float).tolist(),
        "speed": float(request.speed),
    }


def wasm_unavailable() -> str | None:
    """Why the WebAssembly backend cannot run here, or None when it can."""
    install = f"npm ci --prefix {WEB_DIR}"
    return node_package_unavailable(WEB_DIR, "onnxruntime-web", install, "time onnxruntime-web")


@dataclass(frozen=True)
class WasmTiming:
    """One ``session.run`` in Node: its seconds and the number of audio samples it made."""

    seconds: float
    samples: int


class WasmSession:
    """A Node.js process holding one model in onnxruntime-web's WebAssembly backend."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        reason = wasm_unavailable()
        if reason is not None:
            raise ParityError(f"wasm: {reason}")
        self.path = Path(path)
        self.node = NodeProcess(
            SCRIPT, [str(self.path.resolve()), str(threads)], f"wasm: {self.path}"
        )
        try:
            ready = self.node.receive()
        except BaseException:
            self.close()
            raise
        self.load_seconds = float(ready["load_seconds"])
        self.version = str(ready.get("version"))

    def run(self, request: KokoroInput) -> WasmTiming:
        """Synthesize ``request`` once; the time is Node's, of ``session.run`` alone."""
        self.node.send(request_message(request))
        answer = self.node.receive()
        return WasmTiming(float(answer["seconds"]), int(answer["samples"]))

    def close(self) -> None:
        """Close stdin (Node then exits), wait for it, and release the pipes."""
        self.node.close()

    def __enter__(self) -> WasmSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
