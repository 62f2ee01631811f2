"""Staged parity of an exported Kokoro (any precision) against PyTorch float32.

Kokoro's generator feeds the STFT phase of its harmonic source to a convolution; a phase is
a discontinuous function of its signal, so a difference in F0 at float32 rounding level
(1e-7) moves the waveform by a few percent (measured: 3.5% rms on the trained Kokoro-82M,
4 to 6% on the seeded random one). Comparing only the free-running waveforms would need a
tolerance so loose that it proves little. So the check has three parts:

1. durations: identical, or the failure names the tokens that moved (where the tolerance has a
   ``duration_margin``, a token may move at a rounding boundary, and then the rest is judged
   with timing forced to PyTorch's);
2. the generator's inputs (decoder features, style, F0): ONNX Runtime against PyTorch,
   tight, since everything before the generator is well conditioned;
3. the generator forced: PyTorch's generator run on the very tensors ONNX Runtime fed its
   own, with its harmonic source (``m_source``, where the chaos enters) checked against ONNX
   Runtime's and then replaced by it, so both produce audio from identical inputs; what is
   left is float rounding (measured 4e-6 rms), so this part is tight.

The free-running log-mel distance is measured and gated too, with the bound that chaos
allows. Where PyTorch's source draws random numbers (kokoro's own, kept by the blog post's
export), it is judged as a distribution (``parity.judge.source``), not sample by sample.
The graph's output gain is measured before any waveform figure and taken out of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore, array_digest, torch_parts
from parity.judge.comparators import (
    DurationComparison,
    OutputGain,
    TensorComparison,
    WaveformComparison,
    compare_durations,
    compare_spectra,
    compare_waveforms,
    least_squares_gain,
    match_layout,
)
from parity.judge.forcing import (
    DURATION_HEAD,
    GENERATOR,
    ForcingRun,
    ForcingSession,
    forced_generator_cached,
    match_generator_inputs,
)
from parity.judge.intermediate import capture
from parity.judge.metrics import log_mel_distance
from parity.judge.runners import KokoroOutput, TorchRunner
from parity.judge.source import (
    SourceDistribution,
    draws_random,
    generator_distribution,
    source_distribution,
)
from parity.judge.tolerances import SOURCE_SPECTRUM_MEL, STOCHASTIC_SOURCE, StagedTolerance


@dataclass(frozen=True)
class StageComparison:
    """One generator input: which ONNX value holds it and how far it is from PyTorch's."""

    name: str
    onnx_value: str
    comparison: TensorComparison


@dataclass(frozen=True)
class StagedParity:
    """The verdict for one input, with every figure behind it.

    ``gain`` is measured first (the graph's level over PyTorch's, on the forced generator's
    frames) and every waveform figure after it is taken with the gain removed; it fails the
    verdict only beyond ``max_gain_db`` where one is set. ``notes`` name the checks that could
    not be made and why: a check is never passed by leaving it out.
    """

    case: str
    audio_seconds: float
    durations: DurationComparison | None
    stages: tuple[StageComparison, ...]
    source: TensorComparison | None
    forced: WaveformComparison | None
    free: WaveformComparison | None
    tolerance: StagedTolerance = field(repr=False)
    failures: tuple[str, ...]
    gain: OutputGain | None = None
    source_distribution: SourceDistribution | None = None
    free_distribution: SourceDistribution | None = None
    harmonics: TensorComparison | None = None  # the source's STFT, ORT's against PyTorch's
    notes: tuple[str, ...] = ()
    # Tokens moved at a rounding boundary (``StagedTolerance.duration_margin``), so every
    # figure after the durations was taken with timing forced to PyTorch's.
    timing_forced: bool = False

    def __bool__(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        parts = [f"{self.case}: {self.audio_seconds:.1f}s audio"]
        if self.gain is not None:
            parts.append(self.gain.describe())
        if self.durations is not None:
            forced = ", at a rounding boundary: timing forced" if self.timing_forced else ""
            parts.append(self.durations.describe(3) + forced)
        if self.stages:
            worst = max(self.stages, key=lambda stage: stage.comparison.rms_rel)
            parts.append(
                f"generator inputs rms_rel <= {worst.comparison.rms_rel:.2g} ({worst.name})"
            )
        if self.source is not None:
            parts.append(f"source rms_rel {self.source.rms_rel:.2g}")
        if self.source_distribution is not None:
            parts.append(f"random source ratio {self.source_distribution.ratio:.3f}")
        if self.harmonics is not None:
            parts.append(f"harmonic input rms_rel {self.harmonics.rms_rel:.2g}")
        if self.forced is not None and self.forced.error is not None:
            parts.append(
                f"forced generator rms_rel {self.forced.error.rms_rel:.2g}, "
                f"max_rel {self.forced.error.max_rel:.2g}, log-mel {self.forced.mel_distance:.4f}"
            )
        if self.free_distribution is not None:
            parts.append(f"free-running ratio {self.free_distribution.ratio:.3f} to PyTorch draws")
        elif self.free is not None:
            parts.append(f"free-running {self.free.summary()}")
        parts += [f"NOT MADE: {note}" for note in self.notes if "not compared" in note]
        return "; ".join(parts)

    def report(self) -> str:
        made = "" if not any("not compared" in note for note in self.notes) else " (see NOT MADE)"
        verdict = "PASS" if self else "FAIL"
        lines = [f"staged parity of {self.case!r} against PyTorch float32: {verdict}{made}"]
        if self.gain is not None:
            lines.append(f"  output {self.gain.describe()}; the figures below are without it")
        lines += [f"  FAIL {failure}" for failure in self.failures]
        lines += [
            f"  {'NOT MADE' if 'not compared' in note else 'NOTE'} {note}" for note in self.notes
        ]
        if self.durations is not None:
            lines.append(f"  {self.durations.describe()}")
        for stage in self.stages:
            lines.append(
                f"  generator input {stage.name} ({stage.onnx_value}): {stage.comparison.summary()}"
            )
        if self.source is not None:
            lines.append(
                f"  harmonic source (PyTorch on ONNX Runtime's F0): {self.source.summary()}"
            )
        if self.source_distribution is not None:
            lines.append(f"  harmonic source, random: {self.source_distribution.summary()}")
        if self.harmonics is not None:
            lines.append(f"  harmonic input (its STFT): {self.harmonics.summary()}")
        if self.forced is not None:
            lines.append(f"  forced generator: {self.forced.summary()}")
        if self.free is not None:
            lines.append(f"  free-running: {self.free.summary()}")
        if self.free_distribution is not None:
            lines.append(f"  free-running, random: {self.free_distribution.summary()}")
        lines.append(f"  tolerances: {self.tolerance.describe()}")
        return "\n".join(lines)


def source_comparison(torch_source: np.ndarray, onnx_source: np.ndarray) -> TensorComparison | None:
    """PyTorch's harmonic source against ORT's, in whatever layout they agree on."""
    matched = match_layout(torch_source, onnx_source) if torch_source.size else None
    return matched[0] if matched else None


def torch_reference(
    model: object, request: KokoroInput, runs: RunStore
) -> tuple[KokoroOutput, list[np.ndarray], np.ndarray | None]:
    """PyTorch's free-running output, the arguments its generator was called with, and its
    durations before rounding (None where the model has no ``predictor.duration_proj``)."""

    def compute() -> dict[str, np.ndarray | None]:
        has_head = DURATION_HEAD in dict(model.named_modules())  # type: ignore[attr-defined]
        with capture(model, [GENERATOR, *([DURATION_HEAD] if has_head else [])]) as captured:
            output = TorchRunner(model).infer(request)
        arguments = {f"arg{i}": value for i, value in enumerate(captured[GENERATOR].inputs)}
        unrounded = None
        if has_head:  # kokoro's KModel: sigmoid(duration_proj(x)).sum(-1) / speed, then round
            logits = captured[DURATION_HEAD].outputs[0].astype(np.float32)
            unrounded = (1 / (1 + np.exp(-logits))).sum(-1) / np.float32(request.speed)
        return {
            "waveform": output.waveform,
            "durations": output.durations,
            "unrounded": unrounded,
            **arguments,
        }

    values = runs.arrays("torch", torch_parts(model, request, "free"), compute)
    arguments = [values[f"arg{i}"] for i in range(sum(key.startswith("arg") for key in values))]
    unrounded = values.get("unrounded")
    return (
        KokoroOutput(values["waveform"], values["durations"]),
        arguments,
        None if unrounded is None else unrounded.reshape(-1),
    )


def _boundary_note(margin: float) -> str:
    return (
        f"durations: each token that moved lies within {margin:g} frames of the rounding "
        "boundary it crossed, PyTorch's and the file's (the precision's own drift, below); the "
        "rest is judged with timing forced to PyTorch's"
    )


def judge_random_source(
    model: object, source_input: np.ndarray, onnx_source: np.ndarray, runs: RunStore
) -> SourceDistribution | None:
    """The harmonic source as a distribution (``parity.judge.source``) where PyTorch's draws
    random numbers; None where it is deterministic and is compared sample by sample."""
    source = model.decoder.generator.m_source  # type: ignore[attr-defined]
    if not source_input.size or not draws_random(source):
        return None
    parts = torch_parts(model, None, "source-draws", forced=array_digest(source_input, onnx_source))
    stored = runs.record(
        "source-draws",
        parts,
        lambda: asdict(source_distribution(source, source_input, onnx_source)),
    )
    return SourceDistribution(**stored)


def _drift_note(source: TensorComparison, spectrum: float) -> str:
    return (
        f"harmonic source: not equal sample by sample (rms_rel {source.rms_rel:.3g}), so judged "
        f"by its spectrum: log-mel {spectrum:.4f} (bound {SOURCE_SPECTRUM_MEL:g}); a source that "
        "sums its phase in float32 drifts with length"
    )


def _source_failures(
    source: TensorComparison | None,
    distribution: SourceDistribution | None,
    tolerance: StagedTolerance,
    spectrum: float | None = None,
) -> list[str]:
    if distribution is not None:
        return _drawn_failures("random harmonic source", distribution)
    if source is None or not source.finite:
        return ["harmonic source: no output of the graph's source matches PyTorch's in shape"]
    if source.rms_rel <= tolerance.source_rms_rel:
        return []
    if spectrum is not None and np.isfinite(spectrum) and spectrum <= SOURCE_SPECTRUM_MEL:
        return []
    return [
        f"harmonic source: rms_rel {source.rms_rel:.3g} > {tolerance.source_rms_rel:g} and "
        f"log-mel {spectrum:.4f} > {SOURCE_SPECTRUM_MEL:g}"
    ]


def _forced_failures(forced: WaveformComparison, tolerance: StagedTolerance) -> list[str]:
    if forced.error is None or not forced.finite:
        return ["forced generator: waveform length or values differ"]
    failures = []
    if forced.error.rms_rel > tolerance.forced_rms_rel:
        failures.append(
            f"forced generator: rms_rel {forced.error.rms_rel:.3g} > {tolerance.forced_rms_rel:g}"
        )
    if forced.error.max_rel > tolerance.forced_max_rel:
        failures.append(
            f"forced generator: max_rel {forced.error.max_rel:.3g} > {tolerance.forced_max_rel:g}"
        )
    return failures


def check_against_pytorch(
    model: object,
    session: ForcingSession,
    request: KokoroInput,
    tolerance: StagedTolerance,
    *,
    max_gain_db: float | None = None,
) -> StagedParity:
    """Run ``request`` through PyTorch and ONNX Runtime and judge the three parts; each run
    comes from the session's store when nothing that shapes it changed."""
    reference, generator_args, unrounded = torch_reference(model, request, session.runs)
    onnx_run = session.run(request)
    notes = [onnx_run.durations_note] if onnx_run.durations_note else []
    early = StagedParity(
        request.name, reference.seconds, None, (), None, None, None, tolerance, (),
        notes=tuple(notes),
    )  # fmt: skip
    if onnx_run.durations is not None:
        durations = compare_durations(
            reference.durations,
            onnx_run.durations,
            request.symbols,
            (unrounded, onnx_run.unrounded),
        )
        early = replace(early, durations=durations)
        if not durations.equal:
            if not durations.at_rounding_boundary(tolerance.duration_margin):
                return replace(early, failures=(durations.describe(),))
            notes.append(_boundary_note(tolerance.duration_margin))
            early = replace(early, timing_forced=True)
            onnx_run = session.run(request, durations=reference.durations)
    stages, forced_args, failures = _generator_inputs(generator_args, onnx_run, tolerance)
    if not forced_args:
        return replace(early, failures=tuple(failures))
    forced_run = forced_generator_cached(
        model, forced_args, onnx_run.source, onnx_run.harmonics, session.runs
    )
    harmonics = None
    if forced_run.torch_harmonics.size and onnx_run.harmonics is not None:
        harmonics = compare_spectra(forced_run.torch_harmonics, onnx_run.harmonics)
    notes += _harmonics_notes(harmonics)
    failures += _harmonics_failures(harmonics, tolerance)
    distribution = judge_random_source(
        model, forced_run.source_input, onnx_run.source, session.runs
    )
    source, spectrum = None, None
    if distribution is None:
        source = source_comparison(forced_run.torch_source, onnx_run.source)
        if source is not None and source.finite and source.rms_rel > tolerance.source_rms_rel:
            spectrum = log_mel_distance(
                forced_run.torch_source.reshape(-1), onnx_run.source.reshape(-1)
            )
            notes.append(_drift_note(source, spectrum))
    failures += _source_failures(source, distribution, tolerance, spectrum)
    gain = OutputGain(
        least_squares_gain(forced_run.audio, onnx_run.waveform), "least squares, forced frames"
    )
    if max_gain_db is not None and not abs(gain.db) <= max_gain_db:
        failures.append(f"output {gain.describe()} beyond {max_gain_db:g} dB")
    unity = gain.factor if np.isfinite(gain.factor) and gain.factor != 0 else 1.0
    heard = onnx_run.waveform / np.float32(unity)
    forced = compare_waveforms(forced_run.audio, heard)
    free = compare_waveforms(reference.waveform, heard)
    failures += _forced_failures(forced, tolerance)
    free_drawn = None
    if distribution is not None:  # two random draws differ: the waveform is a distribution too
        free_drawn = _free_draws(model, request, generator_args, heard, session.runs)
    failures += _free_failures(free, free_drawn, tolerance)
    return replace(
        early,
        stages=tuple(stages),
        source=source,
        forced=forced,
        free=free,
        failures=tuple(failures),
        gain=gain,
        source_distribution=distribution,
        free_distribution=free_drawn,
        harmonics=harmonics,
        notes=tuple(notes),
    )


def _generator_inputs(
    generator_args: list[np.ndarray], onnx_run: ForcingRun, tolerance: StagedTolerance
) -> tuple[list[StageComparison], list[np.ndarray], list[str]]:
    """Each generator input against PyTorch's, and the views of ORT's to force with."""
    try:
        matched = match_generator_inputs(generator_args, onnx_run.generator_inputs)
    except ParityError as error:  # without durations, a timing change shows here first
        return [], [], [f"generator inputs: {error}"]
    stages, views, failures = [], [], []
    for name, value_name, comparison, view in matched:
        stages.append(StageComparison(name, value_name, comparison))
        views.append(view)
        if not comparison.finite or comparison.rms_rel > tolerance.stage_rms_rel:
            failures.append(
                f"generator input {name}: rms_rel {comparison.rms_rel:.3g}"
                f" > {tolerance.stage_rms_rel:g}"
            )
    return stages, views, failures


def _harmonics_notes(harmonics: TensorComparison | None) -> list[str]:
    if harmonics is not None:
        return []
    return [
        "harmonic input: no noise_convs.0 convolution to read it from; the forced generator "
        "takes its STFT from ORT's source"
    ]


def _harmonics_failures(
    harmonics: TensorComparison | None, tolerance: StagedTolerance
) -> list[str]:
    if harmonics is None or (harmonics.finite and harmonics.rms_rel <= tolerance.harmonics_rms_rel):
        return []
    return [
        f"harmonic input (STFT of the source): rms_rel {harmonics.rms_rel:.3g} > "
        f"{tolerance.harmonics_rms_rel:g}"
    ]


def _drawn_failures(what: str, drawn: SourceDistribution) -> list[str]:
    """A figure judged against PyTorch's random draws (``parity.judge.source``)."""
    if STOCHASTIC_SOURCE.accepts(drawn):
        return []
    bound = STOCHASTIC_SOURCE.max_ratio
    return [f"{what}: ratio {drawn.ratio:.3g} > {bound:g} ({drawn.summary()})"]


def _free_failures(
    free: WaveformComparison, drawn: SourceDistribution | None, tolerance: StagedTolerance
) -> list[str]:
    if drawn is not None:
        return _drawn_failures("free-running", drawn)
    if free.finite and free.mel_distance <= tolerance.free_mel:
        return []
    return [f"free-running: log-mel {free.mel_distance:.4f} > {tolerance.free_mel:g}"]


def _free_draws(
    model: object,
    request: KokoroInput,
    generator_args: list[np.ndarray],
    heard: np.ndarray,
    runs: RunStore,
) -> SourceDistribution:
    """ORT's free-running waveform against PyTorch's generator run with fresh draws."""
    generator = model.decoder.generator  # type: ignore[attr-defined]
    parts = torch_parts(model, request, "free-draws", candidate=array_digest(heard))
    stored = runs.record(
        "free-draws",
        parts,
        lambda: asdict(generator_distribution(generator, generator_args, heard)),
    )
    return SourceDistribution(**stored)
