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

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.memo import array_digest, torch_parts
from parity.judge.boundaries import IntermediateSession, boundary_regex
from parity.judge.checks import judge_random_source
from parity.judge.comparators import OutputGain, TensorComparison, least_squares_gain, match_layout
from parity.judge.forcing import (
    GENERATOR,
    SOURCE,
    forced_generator,
    match_generator_inputs,
)
from parity.judge.intermediate import (
    capture,
)
from parity.judge.metrics import log_mel_distance
from parity.judge.runners import TorchRunner
from parity.judge.source import SourceDistribution
from parity.judge.tolerances import SOURCE_SPECTRUM_MEL, STOCHASTIC_SOURCE, IntermediateTolerance

__all__ = ["IntermediateReport", "IntermediateRow", "compare_intermediates"]

OUTPUTS_COMPARED = {"decoder.generator.stft.analysis": 2}  # magnitude and phase
SOURCE_INPUT = "source-input"  # the F0 the harmonic source read, kept with the forced run


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
    statistic: SourceDistribution | None = None  # a random source, judged as a distribution
    spectrum: float | None = None  # log-mel distance, where a source drifts sample by sample

    @property
    def name(self) -> str:
        return self.module if self.output_index == 0 else f"{self.module}[{self.output_index}]"

    def describe(self) -> str:
        if self.statistic is not None:
            return f"{self.name}: {self.statistic.summary()}"
        if self.comparison is None:
            return f"{self.name}: no ONNX value matches its shape"
        c = self.comparison
        return f"{self.name}: rms_rel {c.rms_rel:.3g}, cos {c.cosine:.6f}"

    def line(self) -> str:
        run = "forced" if self.forced else "free"
        if self.statistic is not None:
            d = self.statistic
            return (
                f"{self.order:3d} {self.name:40s} {'drawn':6s} log-mel {d.distance:.4f} to "
                f"{d.draws} PyTorch draws, {d.floor:.4f} between them: ratio {d.ratio:.3f}"
            )
        if self.comparison is None:
            return f"{self.order:3d} {self.name:40s} {run:6s} no ONNX value matches its shape"
        c = self.comparison
        layout = "" if c.layout == "same" else f" [{c.layout}]"
        if self.spectrum is not None:
            layout += f" [judged by spectrum: log-mel {self.spectrum:.4f}]"
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
    gain: OutputGain | None = None  # taken out of the generator's last row
    unplaced: tuple[str, ...] = ()  # Kokoro modules the graph has no prefix for: not compared

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

    def boundary_problem(self, pattern: str, stft: str) -> str | None:
        """Why the outputs of module ``pattern`` (``BOUNDARY_PATTERNS``) fail, in one
        paragraph, or None: a module the graph has no place for, or none matched, fails
        rather than skips. Only parity's exact STFT is a module pair (analysis, synthesis);
        kokoro's and torch.stft are methods, so the generator's row judges them."""
        regex = boundary_regex(pattern)
        unplaced = [module for module in self.unplaced if regex.match(module)]
        if unplaced:
            return f"the graph has no place for {unplaced} (--parity-scope MODULE=PREFIX)"
        rows = [row for row in self.rows if regex.match(row.module)]
        if not rows and pattern.startswith("decoder.generator.stft.") and stft != "exact":
            rows = [row for row in self.rows if row.module == "decoder.generator"]
        if not rows:
            return f"no output of {pattern} was matched (stft={stft}):\n{self.table()}"
        if not all(row.within for row in rows):
            return self.table(failing_context=3)
        return None

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
        unity = self.gain is None or abs(self.gain.db) < 0.01
        if self.gain is not None and not (failing_context is not None and unity):
            lines.append(f"  output {self.gain.describe()}; taken out of the last row")
        if self.unplaced:
            lines.append(
                f"  NOT COMPARED {', '.join(self.unplaced)}: no node-name prefix of the graph "
                "holds them (--scope MODULE=PREFIX places one)"
            )
        for row in rows:
            mark = "  " if row.within else "X "
            lines.append(mark + row.line() + ("   <- first" if row is first else ""))
        if failing_context is not None and len(rows) < len(self.rows):
            failing = sum(not row.within for row in self.rows)
            lines.append(f"  ({len(self.rows)} rows, {failing} over tolerance; full table: -v)")
        return "\n".join(lines)


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
    harmonics = onnx_values.get(session.harmonics_value) if session.harmonics_value else None
    inner = [path for path in session.labels if path.startswith(GENERATOR + ".")]

    def compute() -> dict[str, np.ndarray]:
        with capture(model, inner) as captured:
            run = forced_generator(model, args, source, harmonics)
        forced = {path: call.outputs for path, call in captured.items()}
        forced[GENERATOR] = [run.audio]
        forced[SOURCE_INPUT] = [run.source_input]
        return _flatten(forced)

    parts = torch_parts(
        model, None, "forced-modules", modules=inner, forced=array_digest(*args, source, harmonics)
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
    onnx_values = dict(session.run(request))
    forced = _forced_outputs(model, session, arguments, onnx_values)
    outputs.update(forced)
    gain = None
    if GENERATOR in forced:  # the graph's level over PyTorch's, taken out of the last row
        factor = least_squares_gain(forced[GENERATOR][0], onnx_values["waveform"])
        gain = OutputGain(factor, "least squares, forced frames")
        if np.isfinite(factor) and factor != 0:
            onnx_values["waveform"] = onnx_values["waveform"] / np.float32(factor)
    rows: list[IntermediateRow] = []
    for path in order:
        boundary = session.boundaries.get(path)
        candidates = ("waveform",) if path == GENERATOR else boundary.outputs if boundary else ()
        for index, reference in enumerate(outputs.get(path, [])[: OUTPUTS_COMPARED.get(path, 1)]):
            is_forced = path in forced
            statistic = None
            if path == SOURCE and SOURCE_INPUT in forced:
                statistic = judge_random_source(
                    model, forced[SOURCE_INPUT][0], onnx_values[session.source_value], session.runs
                )
            match = _best_match(reference, candidates, onnx_values)
            comparison = match[1] if match else None
            spectrum = None
            if statistic is not None:
                within = STOCHASTIC_SOURCE.accepts(statistic)
            else:
                within = comparison is not None and tolerance.accepts(comparison, forced=is_forced)
                if path == SOURCE and comparison is not None and match and not within:
                    # a float32 phase sum drifts with length: judged by its spectrum instead
                    candidate = onnx_values[match[0]].reshape(-1)
                    spectrum = log_mel_distance(reference.reshape(-1), candidate)
                    within = spectrum <= SOURCE_SPECTRUM_MEL
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
                    statistic,
                    spectrum,
                )
            )
    return IntermediateReport(request.name, tuple(rows), tolerance, gain, session.unplaced)
