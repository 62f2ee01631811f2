"""Kokoro's module boundaries in a graph: which modules to compare, where each sits (whatever
wrapper prefix the exporter added, ``parity.core.scopes``), and a session of the graph with
every boundary exposed as an output (``IntermediateSession``), for the walk in
``parity.judge.localize``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, astuple
from pathlib import Path

import numpy as np
import onnx

from parity.core.cache import content_digest
from parity.core.errors import ParityError
from parity.core.graph import load_model
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore, onnxruntime_parts, source_digest, torch_parts
from parity.core.scopes import locate_module, map_scopes
from parity.judge.forcing import GENERATOR, SOURCE, harmonic_input, harmonic_source
from parity.judge.intermediate import (
    ScopeBoundary,
    expose,
    module_scopes,
    onnx_scope_prefixes,
    renamed_variants,
    scope_boundary,
)
from parity.judge.runners import OrtRunner, TorchRunner

__all__ = [
    "BOUNDARY_PATTERNS",
    "IntermediateSession",
    "boundary_regex",
    "kokoro_boundaries",
    "resolve_values",
    "scopes_of",
]

# Kokoro's module boundaries, as patterns over module paths; ``{i}`` is any block index.
# predictor.F0Ntrain is a method, so its parts (shared, F0, N, F0_proj, N_proj) are listed.
# Only a module's first output is compared (an LSTM's final states and the source's noise
# and voicing flags are internal), except where OUTPUTS_COMPARED says otherwise.
BOUNDARY_PATTERNS: dict[str, str] = {
    "bert": "ALBERT",
    "bert_encoder": "bert_encoder",
    "predictor.text_encoder": "predictor text encoder",
    "predictor.lstm": "predictor LSTM",
    "predictor.duration_proj": "duration projection",
    "predictor.shared": "F0/N shared LSTM",
    "predictor.F0.{i}": "F0 block",
    "predictor.F0_proj": "F0 projection",
    "predictor.N.{i}": "N block",
    "predictor.N_proj": "N projection",
    "text_encoder": "text encoder",
    "decoder.F0_conv": "decoder F0 conv",
    "decoder.N_conv": "decoder N conv",
    "decoder.encode": "decoder encode",
    "decoder.asr_res": "decoder asr_res",
    "decoder.decode.{i}": "decoder decode block",
    "decoder.generator.m_source": "harmonic source",
    "decoder.generator.stft.analysis": "STFT",
    "decoder.generator.noise_convs.{i}": "generator noise conv",
    "decoder.generator.noise_res.{i}": "generator noise resblock",
    "decoder.generator.ups.{i}": "generator upsample",
    "decoder.generator.resblocks.{i}": "generator resblock",
    "decoder.generator.conv_post": "generator conv_post",
    "decoder.generator.stft.synthesis": "iSTFT",
    "decoder.generator": "generator",
}


def boundary_regex(pattern: str) -> re.Pattern[str]:
    """A ``BOUNDARY_PATTERNS`` key as a regular expression over module paths."""
    return re.compile("^" + re.escape(pattern).replace(r"\{i\}", r"\d+") + "$")


def kokoro_boundaries(model: object) -> dict[str, str]:
    """Module path -> label for every Kokoro boundary this model has (STFT only if ours)."""
    paths = [name for name, _ in model.named_modules()]  # type: ignore[attr-defined]
    found: dict[str, str] = {}
    for pattern, label in BOUNDARY_PATTERNS.items():
        regex = boundary_regex(pattern)
        for path in paths:
            if regex.match(path):
                found[path] = label
    return found


def resolve_values(
    model: onnx.ModelProto, target: str, scopes: dict[str, str] | None = None
) -> tuple[str, ...]:
    """The graph values ``target`` names: a value, a node (its outputs) or a module path."""
    for node in model.graph.node:
        if target in node.output:
            return (target,)
    if target in {i.name for i in model.graph.input}:
        return (target,)
    for node in model.graph.node:
        if node.name == target:
            return tuple(name for name in node.output if name)
    if scopes and target in scopes:
        return scope_boundary(model, renamed_variants(model, scopes[target])).outputs
    if target.startswith("/"):
        return scope_boundary(model, renamed_variants(model, target.rstrip("/") + "/")).outputs
    raise ParityError(
        f"intermediate: {target!r} names no value, node or module scope of the graph; "
        "list the scopes with `parity compare MODEL --list-scopes`"
    )


class IntermediateSession:
    """An exported Kokoro whose module boundaries (``labels``: path -> label) are outputs too.

    ``scopes`` maps module paths to the exporter's scope prefixes (``scopes_of``);
    ``transform`` edits the graph before it is loaded (planted faults, for instance). With a
    run store, the boundaries and ONNX Runtime's outputs come from it when the same artefact
    was run before, and no model is loaded.
    """

    def __init__(
        self,
        path: Path,
        scopes: dict[str, str],
        labels: dict[str, str],
        *,
        threads: int = 0,
        transform: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None,
        runs: RunStore | None = None,
        overrides: Mapping[str, str] | None = None,
        provider: str = "cpu",
    ) -> None:
        self.path, self.labels, self.threads = Path(path), labels, threads
        self.provider = provider
        overrides = dict(overrides or {})
        self.runs = runs or RunStore(None)
        self._model: onnx.ModelProto | None = None
        self._runner: OrtRunner | None = None
        if transform is None:
            self.artefact = content_digest(self.path)
            parts = {
                "artefact": self.artefact,
                "scopes": scopes,
                "labels": labels,
                "overrides": overrides,
                "code": source_digest(
                    (
                        "judge/boundaries.py",
                        "judge/forcing.py",
                        "judge/intermediate.py",
                        "core/graph.py",
                        "core/scopes.py",
                        "core/interface.py",
                    ),
                    ("onnx",),
                ),
            }
            plan = self.runs.record(
                "intermediate-plan",
                parts,
                lambda: _plan(self._loaded(), scopes, labels, overrides),
            )
        else:
            self._model = transform(load_model(self.path))
            # A planted fault is keyed by the edited graph's bytes, not the file's.
            self.artefact = hashlib.sha256(self._model.SerializeToString()).hexdigest()
            plan = _plan(self._model, scopes, labels, overrides)
        self.boundaries = {
            module: ScopeBoundary(
                b["prefix"], b["node_count"], tuple(b["inputs"]), tuple(b["outputs"])
            )
            for module, b in plan["boundaries"].items()
        }
        self.generator = ScopeBoundary(*plan["generator"][:2], *map(tuple, plan["generator"][2:]))
        self.source_value: str = plan["source"]
        self.harmonics_value: str | None = plan.get("harmonics")
        self.names: list[str] = list(plan["names"])
        self.unplaced: tuple[str, ...] = tuple(plan["unplaced"])

    def _loaded(self) -> onnx.ModelProto:
        if self._model is None:
            self._model = load_model(self.path)
        return self._model

    def _session(self) -> OrtRunner:
        if self._runner is None:
            exposed = expose(self._loaded(), self.names)
            self._runner = OrtRunner(
                self.path,
                threads=self.threads,
                model_bytes=exposed.SerializeToString(),
                provider=self.provider,
            )
        return self._runner

    @classmethod
    def for_kokoro(
        cls,
        path: Path,
        model: object,
        request: KokoroInput,
        *,
        modules: Sequence[str] = (),
        threads: int = 0,
        transform: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None,
        runs: RunStore | None = None,
        overrides: Mapping[str, str] | None = None,
        provider: str = "cpu",
    ) -> IntermediateSession:
        """Kokoro's boundaries (or just ``modules``), scoped by one PyTorch pass on ``request``
        and placed in the graph by ``parity.core.scopes.map_scopes`` (``overrides``: module
        path -> graph prefix, for what names cannot place)."""
        labels = kokoro_boundaries(model)
        if modules:
            known = dict(model.named_modules())  # type: ignore[attr-defined]
            unknown = [module for module in modules if module not in known]
            if unknown:
                raise ParityError(
                    f"intermediate: {unknown[0]!r} is not a module of the PyTorch Kokoro; "
                    "give a dotted path such as decoder.generator.resblocks.2"
                )
            labels = {module: labels.get(module, module) for module in modules}
        store = runs or RunStore(None)
        scopes = store.record(
            "scopes",
            torch_parts(model, request, "scopes"),
            lambda: scopes_of(model, request),
        )
        return cls(
            path,
            scopes,
            labels,
            threads=threads,
            transform=transform,
            runs=store,
            overrides=overrides,
            provider=provider,
        )

    def run(self, request: KokoroInput) -> dict[str, np.ndarray]:
        """ORT's waveform and every exposed value, from the store when it has them."""

        def compute() -> dict[str, np.ndarray]:
            runner = self._session()
            values = runner.run(request, [runner.interface.waveform, *self.names])
            return {"waveform": values[0], **dict(zip(self.names, values[1:], strict=True))}

        parts = onnxruntime_parts(
            self.artefact,
            request,
            "intermediate",
            threads=self.threads,
            provider=self.provider,
            names=self.names,
        )
        return self.runs.arrays("onnxruntime", parts, compute)


def _plan(
    model: onnx.ModelProto,
    scopes: dict[str, str],
    labels: dict[str, str],
    overrides: Mapping[str, str],
) -> dict:
    """Which values to expose: each module's boundary, the generator's inputs and source;
    and which Kokoro modules the graph has no place for."""
    present = onnx_scope_prefixes(model)
    mapped = map_scopes(scopes, present, overrides)
    boundaries: dict[str, dict] = {}
    unplaced: list[str] = []
    for module in labels:
        if module not in scopes:
            continue  # not called on this input (kokoro_boundaries lists what the model has)
        prefix = mapped.prefixes.get(module)
        try:
            if prefix is None:
                raise ParityError(f"no prefix for {module}")
            boundaries[module] = asdict(scope_boundary(model, renamed_variants(model, prefix)))
        except ParityError:
            unplaced.append(module)
    generator_prefix = mapped.prefixes.get(GENERATOR) or locate_module(
        GENERATOR, present, overrides
    )
    source_prefix = mapped.prefixes.get(SOURCE) or locate_module(SOURCE, present, overrides)
    generator = scope_boundary(model, generator_prefix)
    source = harmonic_source(model, source_prefix)
    harmonics = harmonic_input(model, generator_prefix)
    names = [*generator.inputs, source, *([harmonics] if harmonics else [])]
    for boundary in boundaries.values():
        names += boundary["outputs"]
    return {
        "boundaries": boundaries,
        "generator": list(astuple(generator)),
        "source": source,
        "harmonics": harmonics,
        "names": list(dict.fromkeys(names)),
        "unplaced": unplaced,
    }


def scopes_of(model: object, request: KokoroInput) -> dict[str, str]:
    """Module path -> the exporter's scope prefix, from one forward pass on ``request``."""
    return module_scopes(model, lambda: TorchRunner(model).infer(request))
