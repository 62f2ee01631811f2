"""Run outputs cached by content, so a warm run recomputes only what a change can move.

A PyTorch output is keyed by the model's weights, the source of the code that computes it
(our model, STFT and capture code; kokoro's, torch's and transformers' versions) and the
input. An ONNX Runtime output is keyed by the artefact's content digest (``content_digest``:
its bytes, and those of every external data file it references), ONNX Runtime's version,
the session options, the graph edits made before loading, and the input. No tolerance is in
any key: changing one re-judges stored outputs and runs nothing. Entries live in the
``ArtifactCache`` (``runs-*`` folders), so a truncated or altered entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.cache import ArtifactCache, CacheKey
from parity.core.node_side import ORT_WEB_BUILDS, adapter_key, current_ort_web
from parity.core.ort_session import effective_threads
from parity.core.tally import TALLY

__all__ = [
    "RunStore",
    "array_digest",
    "onnxruntime_parts",
    "request_digest",
    "source_digest",
    "state_digest",
    "torch_model_digest",
    "torch_parts",
]

Arrays = dict[str, np.ndarray]
_HERE = Path(__file__).parents[1]  # the parity package: modules are named from it
# What shapes a PyTorch output besides the weights: the model (our patches, the exact STFT,
# the deterministic source) and the code that runs it, captures modules and forces the
# generator.
TORCH_MODULES = (
    "builders/model.py",
    "builders/stft.py",
    "builders/dft.py",
    "judge/runners.py",
    "judge/intermediate.py",
    "judge/checks.py",
    "judge/forcing.py",
    "judge/source.py",
)
TORCH_PACKAGES = ("torch", "kokoro", "transformers", "numpy")
# What shapes an ONNX Runtime output besides the artefact: the graph edits made before the
# session loads it (exposed values, forced timing) and the code that feeds it.
ORT_MODULES = (
    "core/interface.py",
    "core/scopes.py",
    "judge/runners.py",
    "builders/forced_timing.py",
    "judge/intermediate.py",
    "judge/checks.py",
    "judge/forcing.py",
    "judge/boundaries.py",
    "judge/localize.py",
)
ORT_PACKAGES = ("onnxruntime", "onnx", "numpy")
# The float16-arithmetic rewrite a ``cpu-fp16`` run applies.
ARITHMETIC_FILES = ("builders/fp16/arithmetic.py",)
# What shapes a run in the browser besides the graph: our two sides and the npm lockfile.
BROWSER_FILES = (
    "judge/browser_session.py",
    "core/node_side.py",
    "measure/web/browser.mjs",
    "measure/web/chromium.mjs",
    "measure/web/lines.mjs",
    "measure/web/page.mjs",
    "measure/web/ort-web.mjs",
    "measure/web/dawn.mjs",
    "measure/web/dawn-adapter.mjs",
    "measure/web/package-lock.json",
)

_torch_digests: dict[int, tuple[tuple[int, ...], str]] = {}


def source_digest(modules: Iterable[str], packages: Iterable[str]) -> str:
    """SHA-256 of our modules' source (paths under ``parity/``; a folder is all of its
    modules) and the named packages' versions."""
    digest = hashlib.sha256()
    for name in modules:
        path = _HERE / name
        # A subpackage counts as all of its modules, so a split file keeps its key's coverage.
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(source.relative_to(_HERE).as_posix().encode() + source.read_bytes())
    for package in packages:
        digest.update(f"{package}={metadata.version(package)}".encode())
    return digest.hexdigest()


def array_digest(*arrays: np.ndarray | None) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes (None counts as its own value)."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        value = np.ascontiguousarray(array)
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def request_digest(request: Any) -> str:
    """What a ``KokoroInput`` asks for: its token ids, style and speed (its name is a label)."""
    return array_digest(
        np.asarray(request.input_ids),
        np.asarray(request.style),
        np.asarray([request.speed], dtype=np.float64),
    )


def state_digest(model: Any) -> str:
    """SHA-256 of what the model computes with: every parameter and buffer, non-persistent
    ones too, and each module's class. The deterministic and stochastic sources (and the STFT
    variants) are module swaps with equal state_dicts: the weights alone would share a key."""
    digest = hashlib.sha256()
    state = model.state_dict()
    buffers = {name: buffer for name, buffer in model.named_buffers() if name not in state}
    for key, tensor in [*sorted(state.items()), *sorted(buffers.items())]:
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    for name, module in model.named_modules():
        digest.update(f"{name}:{type(module).__module__}.{type(module).__qualname__}".encode())
    return digest.hexdigest()


def torch_model_digest(model: Any) -> str:
    """The model's digest (``state_digest``), recomputed only when a parameter, buffer or
    module was replaced or written since: torch bumps a tensor's version on every in-place
    write, so a test that zeroes a bias gets another key."""
    tensors = [*model.parameters(), *model.buffers()]
    fingerprint = tuple(
        value for tensor in tensors for value in (id(tensor), tensor._version, tensor.data_ptr())
    ) + tuple(type(module) for module in model.modules())
    known = _torch_digests.get(id(model))
    if known is None or known[0] != fingerprint:
        known = (fingerprint, state_digest(model))
        _torch_digests[id(model)] = known
    return known[1]


def torch_parts(model: Any, request: Any, what: str, **extra: Any) -> dict[str, Any]:
    """The key of a PyTorch output: weights, code and versions, input, and what was run."""
    return {
        "weights": torch_model_digest(model),
        "code": source_digest(TORCH_MODULES, TORCH_PACKAGES),
        "input": None if request is None else request_digest(request),
        "what": what,
        **extra,
    }


def _provider_parts(provider: str) -> dict[str, Any]:
    if provider == "cpu":
        return {}
    if provider == "cpu-fp16":
        return {"provider": provider, "arithmetic": source_digest(ARITHMETIC_FILES, ())}
    parts = {
        "provider": provider,
        "browser": source_digest(BROWSER_FILES, ()),
        "adapter": adapter_key() if provider == "webgpu" else None,
    }
    build = current_ort_web()
    if build != "parity":  # parity's own build keeps its keys
        lockfile = f"{ORT_WEB_BUILDS[build]}/package-lock.json"
        parts["ort_web"] = f"{build} {source_digest((lockfile,), ())}"
    return parts


def onnxruntime_parts(
    artefact: str,
    request: Any,
    what: str,
    *,
    threads: int,
    provider: str = "cpu",
    **extra: Any,
) -> dict[str, Any]:
    """The key of an ONNX Runtime output: the artefact's ``content_digest`` (which covers its
    external data files; or the loaded bytes' SHA-256), code and versions, session options,
    input, and what was run. Another provider adds its own code (a browser's, its lockfile and
    adapter kind; cpu-fp16's rewrite), and CPU keys stay as they were, so a warm cache stays
    warm."""
    return {
        "artefact": artefact,
        "code": source_digest(ORT_MODULES, ORT_PACKAGES),
        "threads": effective_threads(threads),
        "input": request_digest(request),
        "what": what,
        **_provider_parts(provider),
        **extra,
    }


@dataclass(frozen=True)
class RunStore:
    """Named arrays cached by key; ``cache`` None computes every time (``--parity-rerun``)."""

    cache: ArtifactCache | None

    def arrays(
        self, kind: str, parts: Mapping[str, Any], compute: Callable[[], Mapping[str, Any]]
    ) -> Arrays:
        """``compute()``'s arrays, from the store when it has them; a None value is left out."""
        if self.cache is None:
            with TALLY.building(f"runs-{kind}"):
                return _normalised(compute())

        def build(target: Path) -> dict[str, object]:
            values = _normalised(compute())
            buffer = io.BytesIO()
            np.savez(buffer, allow_pickle=False, **values)
            target.write_bytes(buffer.getvalue())
            return {"names": sorted(values)}

        artefact = self.cache.get_or_build(CacheKey(f"runs-{kind}", parts), ".npz", build)
        with np.load(artefact.path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}

    def record(self, kind: str, parts: Mapping[str, Any], compute: Callable[[], Any]) -> Any:
        """A JSON-able result (timings, names), from the store when it has it."""
        if self.cache is None:
            with TALLY.building(f"runs-{kind}"):
                return compute()

        def build(target: Path) -> dict[str, object]:
            target.write_text(json.dumps(compute()), encoding="utf-8")
            return {}

        artefact = self.cache.get_or_build(CacheKey(f"runs-{kind}", parts), ".json", build)
        return json.loads(artefact.path.read_text("utf-8"))


def _normalised(values: Mapping[str, Any]) -> Arrays:
    """Arrays as numpy, with None left out (a missing name reads back as absent)."""
    return {name: np.asarray(value) for name, value in values.items() if value is not None}
