"""Find the first module where an ONNX export and PyTorch part ways.

Every module boundary of Kokoro (ALBERT, the predictor's parts, the text encoder, the
decoder's blocks, the generator's layers and its STFT) is exposed as a graph output,
captured in PyTorch with forward hooks, matched by layout and compared, in the order the
modules finish. The generator is chaotic in its F0 (see ``parity.judge.checks``), so its inner
modules are compared on the forced run: PyTorch's generator on the very tensors ONNX
Runtime fed its own, harmonic source swapped for ORT's. Everything else runs free. That
keeps every row tight, so the first row over tolerance is where the fault is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from parity.core.cache import content_digest
from parity.core.errors import ParityError
from parity.core.graph import load_model
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore, array_digest, onnxruntime_parts, source_digest, torch_parts
from parity.judge.checks import (
    GENERATOR,
    GENERATOR_SCOPE,
    forced_generator,
    harmonic_source,
    match_generator_inputs,
)
from parity.judge.compare import TensorComparison, match_layout
from parity.judge.intermediate import (
    ScopeBoundary,
    capture,
    expose,
    module_scopes,
    renamed_variants,
    scope_boundary,
)
from parity.judge.runners import OrtRunner, TorchRunner
from parity.judge.tolerances import IntermediateTolerance

__all__ = [
    "IntermediateReport",
    "IntermediateRow",
    "IntermediateSession",
    "boundary_regex",
    "compare_intermediates",
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
OUTPUTS_COMPARED = {"decoder.generator.stft.analysis": 2}  # magnitude and phase


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


@dataclass(frozen=True)
class IntermediateRow:
    """One PyTorch module output against the ONNX value that holds it."""

    order: int
    module: str
    label: str
    onnx_value: str | None
    comparison: TensorComparison | None
    forced: bool
    within: bool
    output_index: int = 0

    @property
    def name(self) -> str:
        return self.module if self.output_index == 0 else f"{self.module}[{self.output_index}]"

    def describe(self) -> str:
        if self.comparison is None:
            return f"{self.name}: no ONNX value matches its shape"
        c = self.comparison
        return f"{self.name}: rms_rel {c.rms_rel:.3g}, cos {c.cosine:.6f}"

    def line(self) -> str:
        run = "forced" if self.forced else "free"
        if self.comparison is None:
            return f"{self.order:3d} {self.name:40s} {run:6s} no ONNX value matches its shape"
        c = self.comparison
        layout = "" if c.layout == "same" else f" [{c.layout}]"
        return (
            f"{self.order:3d} {self.name:40s} {run:6s} {list(c.shape)!s:18s} "
            f"max_abs {c.max_abs:9.3g} rel {c.rel:9.3g} rms_rel {c.rms_rel:9.3g} "
            f"cos {c.cosine:.6f}{layout}"
        )


@dataclass(frozen=True)
class IntermediateReport:
    """Every matched pair in execution order, and the first one over tolerance."""

    case: str
    rows: tuple[IntermediateRow, ...]
    tolerance: IntermediateTolerance = field(repr=False)

    @property
    def first_failure(self) -> IntermediateRow | None:
        return next((row for row in self.rows if not row.within), None)

    def __bool__(self) -> bool:
        return self.first_failure is None

    def row(self, module: str) -> IntermediateRow:
        for row in self.rows:
            if row.module == module and row.output_index == 0:
                return row
        raise KeyError(module)

    def report(self) -> str:
        return self.table()

    def table(self, *, failing_context: int | None = None) -> str:
        """The rows as text; ``failing_context`` keeps the first failure and N rows around it."""
        first = self.first_failure
        rows = self.rows
        if failing_context is not None and first is not None:
            at = rows.index(first)
            rows = rows[max(0, at - failing_context) : at + failing_context + 1]
        lines = [
            f"intermediate parity of {self.case!r}: "
            + ("PASS" if first is None else f"first over tolerance: {first.name}")
            + f" ({self.tolerance.describe()})"
        ]
        for row in rows:
            mark = "  " if row.within else "X "
            lines.append(mark + row.line() + ("   <- first" if row is first else ""))
        if failing_context is not None and len(rows) < len(self.rows):
            failing = sum(not row.within for row in self.rows)
            lines.append(f"  ({len(self.rows)} rows, {failing} over tolerance; full table: -v)")
        return "\n".join(lines)


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
    ) -> None:
        self.path, self.labels, self.threads = Path(path), labels, threads
        self.runs = runs or RunStore(None)
        self._model: onnx.ModelProto | None = None
        self._runner: OrtRunner | None = None
        if transform is None:
            self.artefact = content_digest(self.path)
            parts = {
                "artefact": self.artefact,
                "scopes": scopes,
                "labels": labels,
                "code": source_digest(
                    ("judge/localize.py", "judge/intermediate.py", "core/graph.py"), ("onnx",)
                ),
            }
            plan = self.runs.record(
                "intermediate-plan", parts, lambda: _plan(self._loaded(), scopes, labels)
            )
        else:
            self._model = transform(load_model(self.path))
            # A planted fault is keyed by the edited graph's bytes, not the file's.
            self.artefact = hashlib.sha256(self._model.SerializeToString()).hexdigest()
            plan = _plan(self._model, scopes, labels)
        self.boundaries = {
            module: ScopeBoundary(
                b["prefix"], b["node_count"], tuple(b["inputs"]), tuple(b["outputs"])
            )
            for module, b in plan["boundaries"].items()
        }
        self.generator = ScopeBoundary(*plan["generator"][:2], *map(tuple, plan["generator"][2:]))
        self.source_value: str = plan["source"]
        self.names: list[str] = list(plan["names"])

    def _loaded(self) -> onnx.ModelProto:
        if self._model is None:
            self._model = load_model(self.path)
        return self._model

    def _session(self) -> OrtRunner:
        if self._runner is None:
            exposed = expose(self._loaded(), self.names)
            self._runner = OrtRunner(
                self.path, threads=self.threads, model_bytes=exposed.SerializeToString()
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
    ) -> IntermediateSession:
        """Kokoro's boundaries (or just ``modules``), scoped by one PyTorch pass on ``request``."""
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
        return cls(path, scopes, labels, threads=threads, transform=transform, runs=store)

    def run(self, request: KokoroInput) -> dict[str, np.ndarray]:
        """ORT's waveform and every exposed value, from the store when it has them."""

        def compute() -> dict[str, np.ndarray]:
            values = self._session().run(request, ["waveform", *self.names])
            return {"waveform": values[0], **dict(zip(self.names, values[1:], strict=True))}

        parts = onnxruntime_parts(
            self.artefact, request, "intermediate", threads=self.threads, names=self.names
        )
        return self.runs.arrays("onnxruntime", parts, compute)


def _plan(model: onnx.ModelProto, scopes: dict[str, str], labels: dict[str, str]) -> dict:
    """Which values to expose: each module's boundary, the generator's inputs and source."""
    boundaries: dict[str, dict] = {}
    for module in labels:
        if module not in scopes:
            continue  # not called on this input (or not a module the exporter scoped)
        variants = renamed_variants(model, scopes[module])
        try:
            boundaries[module] = asdict(scope_boundary(model, variants))
        except ParityError:
            continue  # no nodes: the module folded away (e.g. an identity)
    generator = scope_boundary(model, GENERATOR_SCOPE)
    source = harmonic_source(model)
    names = [*generator.inputs, source]
    for boundary in boundaries.values():
        names += boundary["outputs"]
    return {
        "boundaries": boundaries,
        "generator": list(astuple(generator)),
        "source": source,
        "names": list(dict.fromkeys(names)),
    }


def _best_match(
    reference: np.ndarray, candidates: Sequence[str], values: dict[str, np.ndarray]
) -> tuple[str, TensorComparison] | None:
    best: tuple[str, TensorComparison] | None = None
    for name in candidates:
        matched = match_layout(reference, values[name])
        if matched and (best is None or matched[0].rms_rel < best[1].rms_rel):
            best = (name, matched[0])
    return best


def _forced_outputs(
    model: object,
    session: IntermediateSession,
    generator_inputs: list[np.ndarray],
    onnx_values: dict[str, np.ndarray],
) -> dict[str, list[np.ndarray]]:
    """The generator's modules re-run on ORT's generator inputs and harmonic source.

    Empty when ORT's generator inputs have other shapes than PyTorch's (durations moved
    upstream): the generator's rows are then compared free-running, and fail on shape.
    """
    try:
        matched = match_generator_inputs(generator_inputs, onnx_values)
    except ParityError:
        return {}
    args = [view for *_, view in matched]
    source = onnx_values[session.source_value]
    inner = [path for path in session.labels if path.startswith(GENERATOR + ".")]

    def compute() -> dict[str, np.ndarray]:
        with capture(model, inner) as captured:
            audio, _ = forced_generator(model, args, source)
        forced = {path: call.outputs for path, call in captured.items()}
        forced[GENERATOR] = [audio]
        return _flatten(forced)

    parts = torch_parts(
        model, None, "forced-modules", modules=inner, forced=array_digest(*args, source)
    )
    return _unflatten(session.runs.arrays("torch", parts, compute))


def _flatten(outputs: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Module path -> outputs, as named arrays for the run store (order kept)."""
    return {
        f"{path}#{i}": value for path, values in outputs.items() for i, value in enumerate(values)
    }


def _unflatten(values: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    outputs: dict[str, list[np.ndarray]] = {}
    for name, value in values.items():
        outputs.setdefault(name.rsplit("#", 1)[0], []).append(value)
    return outputs


def _free_outputs(
    model: object, labels: dict[str, str], request: KokoroInput
) -> tuple[list[str], dict[str, list[np.ndarray]], list[np.ndarray]]:
    """PyTorch free-running: the order modules finish in, their outputs, and the generator's
    arguments."""
    order: list[str] = []
    modules = dict(model.named_modules())  # type: ignore[attr-defined]
    handles = [
        modules[path].register_forward_hook(
            lambda *_args, path=path: order.append(path) if path not in order else None
        )
        for path in labels
    ]
    try:
        with capture(model, list(dict.fromkeys([*labels, GENERATOR]))) as free:
            TorchRunner(model).infer(request)
    finally:
        for handle in handles:
            handle.remove()
    outputs = {path: call.outputs for path, call in free.items()}
    return order, outputs, free[GENERATOR].inputs


def compare_intermediates(
    model: object,
    session: IntermediateSession,
    request: KokoroInput,
    tolerance: IntermediateTolerance,
) -> IntermediateReport:
    """Walk the session's boundaries in the order PyTorch finishes them, each against ORT's;
    every run comes from the session's store when nothing that shapes it changed."""
    labels = session.labels

    def compute() -> dict[str, np.ndarray]:
        order, outputs, arguments = _free_outputs(model, labels, request)
        named = {f"arg#{i}": value for i, value in enumerate(arguments)}
        return {"order": np.asarray(order), **named, **_flatten(outputs)}

    parts = torch_parts(model, request, "modules", modules=sorted(labels))
    stored = session.runs.arrays("torch", parts, compute)
    order = [str(path) for path in stored.pop("order")]
    arguments = [
        stored.pop(name) for name in sorted(n for n in list(stored) if n.startswith("arg#"))
    ]
    outputs = _unflatten(stored)
    onnx_values = session.run(request)
    forced = _forced_outputs(model, session, arguments, onnx_values)
    outputs.update(forced)
    rows: list[IntermediateRow] = []
    for path in order:
        boundary = session.boundaries.get(path)
        candidates = ("waveform",) if path == GENERATOR else boundary.outputs if boundary else ()
        for index, reference in enumerate(outputs.get(path, [])[: OUTPUTS_COMPARED.get(path, 1)]):
            match = _best_match(reference, candidates, onnx_values)
            comparison = match[1] if match else None
            is_forced = path in forced
            within = comparison is not None and tolerance.accepts(comparison, forced=is_forced)
            rows.append(
                IntermediateRow(
                    len(rows) + 1,
                    path,
                    labels[path],
                    match[0] if match else None,
                    comparison,
                    is_forced,
                    within,
                    index,
                )
            )
    return IntermediateReport(request.name, tuple(rows), tolerance)


def scopes_of(model: object, request: KokoroInput) -> dict[str, str]:
    """Module path -> the exporter's scope prefix, from one forward pass on ``request``."""
    return module_scopes(model, lambda: TorchRunner(model).infer(request))
