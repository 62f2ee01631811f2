"""Where the Node.js side lives and whether it can run here: onnxruntime-web's folder
(``parity/measure/web``, its own lockfile), the system Chromium its browser runs use, and Dawn's
Node bindings (the ``webgpu`` npm package) for WebGPU outside the browser."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parity.core.errors import ParityError

__all__ = [
    "ADAPTERS",
    "CHROMIUM_ENV",
    "DAWN_NODE_FLAGS",
    "DAWN_SCRIPT",
    "ORT_WEB_BUILDS",
    "WEB_DIR",
    "WEB_INSTALL",
    "NodeProcess",
    "adapter_key",
    "browser_unavailable",
    "current_adapter",
    "current_ort_web",
    "dawn_unavailable",
    "find_chromium",
    "node_package_unavailable",
    "on_dawn",
    "ort_web_dist",
    "runs_on",
    "session_unavailable",
    "use_adapter",
    "use_ort_web",
    "using_adapter",
    "using_ort_web",
]

WEB_DIR = Path(__file__).parents[1] / "measure" / "web"
WEB_INSTALL = f"npm ci --prefix {WEB_DIR}"
CHROMIUM_ENV = "PARITY_CHROMIUM"
# Debian's package is `chromium`; Ubuntu's snap and older Debian name it chromium-browser.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# software: SwiftShader, on any machine; hardware: the GPU Chromium finds (--webgpu-adapter);
# dawn: Chromium's WebGPU implementation run by Node.js on the system's Vulkan driver (lavapipe
# where there is no GPU), the one software adapter here with shader-f16, so float16 runs.
ADAPTERS = ("software", "hardware", "dawn")
DAWN_SCRIPT = WEB_DIR / "dawn.mjs"
# Node's V8 compiles onnxruntime-web's 27 MB WebAssembly build with TurboFan on its worker
# threads while the main thread waits, about 30 s after each Dawn session opens. Measured
# 2026-12-07 with Liftoff only (V8's baseline compiler): a one-op model's first answer in 1.3 s
# instead of 37 s; the trained Kokoro on held-yes, first run 20.6 s instead of 48.2 s, later
# runs 19.6 s against 19.2 s, the audio bit-identical.
DAWN_NODE_FLAGS = ("--liftoff-only",)
_ADAPTER = ["software"]


def use_adapter(adapter: str) -> None:
    """Give every WebGPU session of this process ``adapter`` (the run's --webgpu-adapter)."""
    if adapter not in ADAPTERS:
        raise ParityError(f"webgpu adapter: {adapter!r}; give one of {', '.join(ADAPTERS)}")
    _ADAPTER[0] = adapter


def current_adapter() -> str:
    """The WebGPU adapter kind this process's sessions ask for."""
    return _ADAPTER[0]


@contextlib.contextmanager
def using_adapter(adapter: str) -> Iterator[None]:
    """WebGPU sessions opened inside run on ``adapter``; the one before after."""
    before = current_adapter()
    use_adapter(adapter)
    try:
        yield
    finally:
        use_adapter(before)


# The onnxruntime-web builds a browser run can load, by the npm folder (under parity/) whose
# lockfile pins them: parity's own, and the one kokoro-js's transformers.js resolves, i.e. the
# runtime that client ships (--ort-web), so a file is judged and walked on it.
ORT_WEB_BUILDS = {"parity": "measure/web", "kokoro-js": "measure/kokoro-js"}
_ORT_WEB = ["parity"]


def use_ort_web(build: str) -> None:
    """Give every browser session of this process onnxruntime-web ``build`` (--ort-web)."""
    if build not in ORT_WEB_BUILDS:
        raise ParityError(f"ort-web: {build!r}; give one of {', '.join(ORT_WEB_BUILDS)}")
    _ORT_WEB[0] = build


def current_ort_web() -> str:
    """The onnxruntime-web build this process's browser sessions load."""
    return _ORT_WEB[0]


@contextlib.contextmanager
def using_ort_web(build: str) -> Iterator[None]:
    """Browser sessions opened inside load onnxruntime-web ``build``; the one before after."""
    before = current_ort_web()
    use_ort_web(build)
    try:
        yield
    finally:
        use_ort_web(before)


def ort_web_dist(build: str) -> Path:
    """onnxruntime-web's dist folder of ``build``; one line on what to install if absent."""
    folder = Path(__file__).parents[1] / ORT_WEB_BUILDS[build]
    dist = folder / "node_modules" / "onnxruntime-web" / "dist"
    if not dist.is_dir():
        raise ParityError(
            f"ort-web {build}: onnxruntime-web is not installed in {folder}; run: make setup"
        )
    return dist


def node_package_unavailable(folder: Path, package: str, install: str, use: str) -> str | None:
    """Why ``package`` cannot run under Node.js from ``folder``'s node_modules (what to install,
    for ``use``), or None when it can."""
    if shutil.which("node") is None:
        return f"Node.js is not on PATH; install Node.js 18 or newer to {use}"
    if not (folder / "node_modules" / package / "package.json").is_file():
        return f"{package} is not installed; run: {install}"
    return None


def find_chromium() -> Path | None:
    """The browser the WebGPU and in-browser WebAssembly runs drive: ``$PARITY_CHROMIUM``, else
    the first Chromium or Chrome on PATH."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        return Path(given) if Path(given).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def browser_unavailable() -> str | None:
    """Why onnxruntime-web cannot run in a browser here, or None when it can."""
    for package in ("onnxruntime-web", "puppeteer-core"):
        reason = node_package_unavailable(WEB_DIR, package, WEB_INSTALL, "drive Chromium")
        if reason is not None:
            return reason
    if find_chromium() is None:
        given = os.environ.get(CHROMIUM_ENV)
        if given:
            return f"${CHROMIUM_ENV}={given} names no file; point it at a Chromium or Chrome"
        return (
            "no Chromium on PATH (looked for " + ", ".join(CHROMIUM_NAMES) + "); install one "
            f"(Debian: apt-get install chromium) or set ${CHROMIUM_ENV}"
        )
    return None


def on_dawn(provider: str) -> bool:
    """Whether this process's sessions on ``provider`` run on Dawn in Node.js (not Chromium)."""
    return provider == "webgpu" and current_adapter() == "dawn"


def runs_on(provider: str) -> str:
    """Where this process's sessions on ``provider`` run, for a report's line."""
    if provider == "cpu-fp16":
        return "ONNX Runtime CPU, float16 arithmetic rounded after every op (docs/fp16.md)"
    if provider == "cpu":
        return "ONNX Runtime CPU"
    if on_dawn(provider):
        return "onnxruntime-web webgpu on Dawn in Node.js (the system's Vulkan driver)"
    return f"onnxruntime-web {provider} in headless Chromium ({current_adapter()} adapter)"


def session_unavailable(provider: str) -> str | None:
    """Why this process's sessions on browser ``provider`` cannot run (on Dawn or in Chromium,
    by the adapter), or None when they can."""
    return dawn_unavailable() if on_dawn(provider) else browser_unavailable()


def dawn_unavailable() -> str | None:
    """Why Dawn cannot run WebGPU here (what to install), or None when it offers an adapter."""
    return _dawn_probe()[1]


def adapter_key() -> str:
    """The adapter kind in a WebGPU run's cache key; on Dawn with its driver's description
    (Mesa's version, say), since another driver computes other numbers."""
    adapter = current_adapter()
    return f"dawn {_dawn_probe()[0]}" if adapter == "dawn" else adapter


@functools.cache
def _dawn_probe() -> tuple[str, str | None]:
    """Dawn's adapter description and why it cannot run (None when it can): asked once per
    process, of Dawn itself, since only it knows whether the driver will do."""
    for package in ("onnxruntime-web", "webgpu"):
        reason = node_package_unavailable(WEB_DIR, package, WEB_INSTALL, "run Dawn")
        if reason is not None:
            return "", reason
    probe = NodeProcess(DAWN_SCRIPT, ["probe"], "webgpu (dawn)")
    try:
        answer = probe.receive()
    finally:
        probe.close()
    if answer["adapter"] is None:
        return "", str(answer["why"])
    return str(answer["adapter"]["description"]), None


class NodeProcess:
    """A Node.js script that answers JSON lines over stdin/stdout, one answer per message;
    ``label`` names it in errors. An answer ``{"error": ...}`` raises ParityError, as does
    the script's exit (with the last line of its stderr)."""

    def __init__(
        self, script: Path, arguments: list[str], label: str, node_flags: tuple[str, ...] = ()
    ) -> None:
        self.label = label
        # stderr to a file, not a pipe: a pipe nobody reads blocks Node once it fills.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            ["node", *node_flags, str(script), *arguments],
            cwd=script.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The script's next answer. A line that is not one (something a library printed to
        stdout past lines.mjs) is skipped, and named if Node then stops."""
        assert self.process.stdout is not None
        stray: list[str] = []
        while (line := self.process.stdout.readline()) and not line.startswith("{"):
            stray.append(line.strip())
        if not line:  # Node exited: its stderr says why
            self.process.wait()
            self.stderr.seek(0)
            tail = self.stderr.read().strip().splitlines() or stray
            detail = tail[-1] if tail else f"exit status {self.process.returncode}"
            raise ParityError(f"{self.label}: Node.js stopped ({detail[:2000]})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ParityError(f"{self.label}: onnxruntime-web: {answer['error'][:2000]}")
        return answer

    def close(self) -> None:
        """Close stdin (the script then exits), wait for it, and release the pipes."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.stderr.close()
