"""onnxruntime-web's WebAssembly build under Node.js: the browser's CPU backend, timed in Node.

The Node side is ``parity/measure/web/session.mjs`` with its own lockfile (``npm ci --prefix
parity/measure/web``). One Node process holds one model; requests go over stdin as JSON lines and
each answer carries the time of ``session.run`` measured inside Node, so process start,
model load and the pipe are not counted.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput

__all__ = ["WEB_DIR", "WasmSession", "WasmTiming", "node_package_unavailable", "wasm_unavailable"]

WEB_DIR = Path(__file__).with_name("web")
SCRIPT = WEB_DIR / "session.mjs"


def node_package_unavailable(folder: Path, package: str, install: str, use: str) -> str | None:
    """Why ``package`` cannot run under Node.js from ``folder``'s node_modules (what to install,
    for ``use``), or None when it can."""
    if shutil.which("node") is None:
        return f"Node.js is not on PATH; install Node.js 18 or newer to {use}"
    if not (folder / "node_modules" / package / "package.json").is_file():
        return f"{package} is not installed; run: {install}"
    return None


def request_message(request: KokoroInput) -> dict[str, Any]:
    """One request as the Node scripts read it (``web/feeds.mjs`` makes the tensors)."""
    return {
        "ids": request.input_ids.reshape(-1).tolist(),
        "style": request.style.reshape(-1).astype(float).tolist(),
        "speed": float(request.speed),
    }


def wasm_unavailable() -> str | None:
    """Why the WebAssembly backend cannot run here, or None when it can."""
    return node_package_unavailable(
        WEB_DIR, "onnxruntime-web", f"npm ci --prefix {WEB_DIR}", "time onnxruntime-web"
    )


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
        # stderr to a file, not a pipe: a pipe nobody reads blocks Node once it fills.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            ["node", str(SCRIPT), str(self.path.resolve()), str(threads)],
            cwd=WEB_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        try:
            ready = self._receive()
        except BaseException:
            self.close()
            raise
        self.load_seconds = float(ready["load_seconds"])
        self.version = str(ready.get("version"))

    def run(self, request: KokoroInput) -> WasmTiming:
        """Synthesize ``request`` once; the time is Node's, of ``session.run`` alone."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request_message(request)) + "\n")
        self.process.stdin.flush()
        answer = self._receive()
        return WasmTiming(float(answer["seconds"]), int(answer["samples"]))

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:  # Node exited: its stderr says why
            self.process.wait()
            self.stderr.seek(0)
            tail = self.stderr.read().strip().splitlines()
            detail = tail[-1] if tail else f"exit status {self.process.returncode}"
            raise ParityError(f"wasm: {self.path}: Node.js stopped ({detail[:300]})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ParityError(f"wasm: {self.path}: onnxruntime-web: {answer['error'][:300]}")
        return answer

    def close(self) -> None:
        """Close stdin (Node then exits), wait for it, and release the pipes."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()

    def __enter__(self) -> WasmSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
