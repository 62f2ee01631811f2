"""A user's own conversion routines behind the gates: ``module:function`` names from the
configuration (``parity_export_with``, ``parity_fp16_with``, ``parity_quantize_with``).

The contracts, each writing one ONNX file at ``path``:

- export: ``fn(model, path)``: ``model`` is a fresh build of the PyTorch ``KModel`` the gates
  compare against (eval mode, the run's weights), so the routine may wrap or edit it freely
  (remove its weight norm, say);
- float16 and quantize: ``fn(source, path)``: ``source`` is the float32 file the run judged.

Each result is cached by content hash like the harness's own builds: the routine's module
source, its name, and every input are in the key, so a changed routine is run again and an
unchanged one is not.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from parity.core.cache import ArtifactCache, CacheKey, content_digest
from parity.core.errors import ParityError, first_line
from parity.core.graph import load_model
from parity.core.interface import find_interface
from parity.core.memo import state_digest

__all__ = ["HOOK_KINDS", "Hook", "built_by_hook", "load_hook"]

HOOK_KINDS = ("export", "fp16", "quantize")


class Hook:
    """A loaded ``module:function`` routine and the digest of the code that defines it."""

    def __init__(self, kind: str, name: str, function: Callable[..., Any]) -> None:
        self.kind, self.name, self.function = kind, name, function
        source = inspect.getsourcefile(function)
        text = Path(source).read_bytes() if source else repr(function).encode()
        self.digest = hashlib.sha256(text).hexdigest()

    def label(self) -> str:
        return f"{self.kind} by {self.name}"


def load_hook(kind: str, name: str, rootdir: Path | None = None) -> Hook:
    """Import ``name`` (``module:function``; the module importable from ``rootdir``, the
    project's root, or the environment), with one line for anything that does not resolve."""
    module_name, sep, attribute = name.partition(":")
    option = f"parity_{kind}_with"
    if not sep or not module_name or not attribute:
        raise ParityError(
            f"{option} = {name!r}: write it as module:function, e.g. my_export:export_kokoro"
        )
    if rootdir is not None and str(rootdir) not in sys.path:
        sys.path.insert(0, str(rootdir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ParityError(
            f"{option} = {name!r}: cannot import {module_name} ({first_line(error)}); put it in "
            "the project root or install it"
        ) from error
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ParityError(f"{option} = {name!r}: {module_name} has no function {attribute}")
    return Hook(kind, name, function)


def built_by_hook(
    cache: ArtifactCache,
    hook: Hook,
    *,
    model: object = None,
    fresh_model: Callable[[], object] | None = None,
    source: Path | None = None,
    recipe: Mapping[str, Any] | None = None,
) -> Path:
    """Run ``hook`` once for these inputs into the cache; the result must be a Kokoro graph.

    The export gets ``fresh_model()``, a new build of ``model`` (``recipe`` names how it was
    built; a deep copy cannot be made of a model with weight norm), the others the file
    ``source``.
    """
    if hook.kind == "export":
        inputs = {"weights": state_digest(model), "recipe": dict(recipe or {})}
    else:
        if source is None:
            raise ParityError(f"{hook.label()}: no float32 file to convert")
        inputs = {"source": content_digest(Path(source))}
    key = CacheKey(f"hook-{hook.kind}", {"hook": hook.name, "code": hook.digest, **inputs})

    def build(target: Path) -> dict[str, object]:
        try:
            if hook.kind == "export":
                given = fresh_model() if fresh_model is not None else copy.deepcopy(model)
                hook.function(given, target)
            else:
                hook.function(Path(source), target)  # type: ignore[arg-type]
        except ParityError:
            raise
        except Exception as error:  # the user's routine: any failure is reported as its own
            raise ParityError(
                f"{hook.label()} failed: {type(error).__name__}: {first_line(error)}"
            ) from error
        if not target.is_file() or target.stat().st_size == 0:
            raise ParityError(f"{hook.label()} wrote no file at the path it was given")
        find_interface(load_model(target, external_data=False), f"{hook.label()}'s output")
        return {"hook": hook.name}

    return cache.get_or_build(key, ".onnx", build).path
