"""Module paths and the scope names exporters derive from them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from parity.core.errors import ParityError


def unqualified_name(qualified: str) -> str:
    """The exporter's scope component: from the last non-numeric atom on (``resblocks.2``)."""
    atoms = qualified.split(".")
    for position in range(len(atoms) - 1, -1, -1):
        if not atoms[position].isnumeric():
            return ".".join(atoms[position:])
    return qualified


def first_naming_nothing(
    wanted: Sequence[str],
    present: Collection[str],
    optional: Collection[str] = (),
    *,
    prefix: bool = True,
) -> str | None:
    """The first of ``wanted`` (name prefixes, or exact names) that should name something in
    ``present`` and names nothing, else None.

    A name that matches nothing silently changes what a build keeps: a recipe chosen on the
    trained model (``/decoder/decoder/...``, kokoro-onnx's wrapper) kept nothing float on our
    own export (``/decoder/generator/...``). Entries of ``optional``, the stock Kokoro lists,
    may be absent one by one (the STFT variants differ), but not all of them at once.
    """

    def names_nothing(name: str) -> bool:
        if prefix:
            return not any(candidate.startswith(name) for candidate in present)
        return name not in present

    empty = [name for name in wanted if names_nothing(name)]
    required = [name for name in empty if name not in optional]
    if required:
        return required[0]
    stock = [name for name in wanted if name in optional]
    if stock and all(name in empty for name in stock):
        return stock[0]
    return None


@dataclass(frozen=True)
class ScopeMap:
    """Where each PyTorch module's nodes sit in a graph: its node-name prefix, found by
    matching the module tree's scopes against the graph's, under whatever wrapper prefix the
    exporter's top module added (kokoro-onnx's ``/encoder/``, ``/decoder/``)."""

    prefixes: dict[str, str]  # module path -> graph prefix
    wrappers: dict[str, str]  # first scope component -> the wrapper prefix in front of it
    unmatched: tuple[str, ...]  # modules the graph has no prefix for
    overridden: tuple[str, ...]  # modules placed by an override

    def describe(self) -> str:
        wrapped = {top: w for top, w in self.wrappers.items() if w != "/"}
        parts = [f"{len(self.prefixes)} modules placed"]
        if wrapped:
            parts.append("wrappers " + ", ".join(f"/{t}/ under {w}" for t, w in wrapped.items()))
        if self.overridden:
            parts.append(f"{len(self.overridden)} by override")
        if self.unmatched:
            parts.append(f"{len(self.unmatched)} not found (first: {self.unmatched[0]})")
        return "; ".join(parts)


def variant_pattern(prefix: str) -> re.Pattern[str]:
    """A prefix and the renamed copies the TorchScript exporter makes of colliding node names
    (``/text_encoder/`` also as ``/text_encoder_1/``): any component may carry ``_<n>``."""
    parts = [re.escape(part) + r"(?:_\d+)?" for part in prefix.strip("/").split("/") if part]
    return re.compile("^/" + "/".join(parts) + "/$")


def _wrapper_votes(scope: str, present: Collection[str]) -> list[str]:
    """The wrapper prefixes under which ``scope`` (``/a/b/``) sits in ``present``."""
    return [p[: len(p) - len(scope) + 1] for p in present if p.endswith(scope)]


def map_scopes(
    scopes: Mapping[str, str],
    present: Collection[str],
    overrides: Mapping[str, str] | None = None,
) -> ScopeMap:
    """Map module paths to the graph's prefixes (``present``); ``scopes`` holds each module's
    scope as the exporter derives it with no wrapper (``parity.judge.intermediate.module_scopes``).

    Each first scope component (``/bert/``, ``/decoder/``) takes the wrapper prefix most of its
    modules sit under; an override (module path -> prefix) places a module and the modules
    whose scopes lie within its own, where names alone cannot (a renamed submodule).
    """
    overrides = dict(overrides or {})
    unknown = [module for module in overrides if module not in scopes]
    if unknown:
        raise ParityError(
            f"scope override: {unknown[0]!r} is not a module the model called; give a dotted "
            "path such as decoder.generator.stft (`parity compare MODEL --list-scopes` lists "
            "the graph's side)"
        )
    present = set(present)
    groups: dict[str, list[str]] = {}
    for scope in scopes.values():
        groups.setdefault(scope.strip("/").split("/")[0], []).append(scope)
    wrappers: dict[str, str] = {}
    for top, members in groups.items():
        votes = Counter(w for scope in members for w in _wrapper_votes(scope, present))
        if votes:
            wrappers[top] = max(votes, key=lambda w: (votes[w], -len(w)))
    prefixes: dict[str, str] = {}
    overridden: list[str] = []
    unmatched: list[str] = []
    for path, scope in scopes.items():
        owner = max(
            (m for m in overrides if path == m or path.startswith(m + ".")), key=len, default=None
        )
        if owner is not None and scope.startswith(scopes[owner]):
            prefixes[path] = overrides[owner].rstrip("/") + "/" + scope[len(scopes[owner]) :]
            overridden.append(path)
            continue
        # A graph prefix that spells the module's whole path (``/encoder/predictor/lstm/``)
        # is the module's own, whatever called it; else the call-stack scope under its wrapper.
        by_path = [p for p in present if p.endswith(path_scope(path))]
        wrapper = wrappers.get(scope.strip("/").split("/")[0])
        candidate = wrapper + scope[1:] if wrapper else None
        pattern = variant_pattern(candidate) if candidate else None
        if len(by_path) == 1:
            prefixes[path] = by_path[0]
        elif candidate is not None and pattern is not None and any(map(pattern.match, present)):
            prefixes[path] = candidate
        else:
            unmatched.append(path)
    return ScopeMap(prefixes, wrappers, tuple(unmatched), tuple(overridden))


def path_scope(path: str) -> str:
    """A module path as scope components, an index kept with its list
    (``decoder.generator.resblocks.2`` -> ``/decoder/generator/resblocks.2/``)."""
    parts: list[str] = []
    for atom in path.split("."):
        if atom.isnumeric() and parts:
            parts[-1] += f".{atom}"
        else:
            parts.append(atom)
    return "/" + "/".join(parts) + "/"


def locate_module(
    path: str, present: Collection[str], overrides: Mapping[str, str] | None = None
) -> str:
    """The graph prefix of one module (``decoder.generator``) without a PyTorch pass: its
    override, else the one prefix that spells its path under any wrapper."""
    if overrides and path in overrides:
        return overrides[path].rstrip("/") + "/"
    found = sorted(p for p in present if p.endswith(path_scope(path)))
    if len(found) == 1:
        return found[0]
    seen = f"{len(found)} candidates ({', '.join(found[:3])})" if found else "none"
    raise ParityError(
        f"scopes: no single node-name prefix of the graph holds {path} (looked for "
        f"*{path_scope(path)}: {seen}); name it with --scope {path}=PREFIX "
        "(`parity compare MODEL --list-scopes` lists the graph's prefixes)"
    )
