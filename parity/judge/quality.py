"""How a variant sounds next to its float32 source: one verdict on four axes.

Free-running Kokoro is chaotic, and a variant that rounds one token's duration the other
way shifts every later frame, so a frame-by-frame distance mostly measures timing. The
verdict therefore keeps the axes apart:

- timing: the share of tokens whose frame count moved, and the length change;
- sound, with timing removed: log-mel distance and mel-cepstral distortion (MCD) on the same
  frames. Our graphs run on the durations float32 predicted (``parity.builders.forced_timing``); a
  graph that cannot be rewired (a client's audio) is aligned by DTW instead;
- static: the rise of the noise floor and of the share of energy above 6 kHz;
- loudness: the rms level against float32's, in dB.

Each axis is judged on the mean over the requests and on the worst request, each with its own
bound (``parity.judge.tolerances.VariantTolerance``), so a fault on a few requests (a whine
on the long sentences, static in one voice) cannot hide in an average, and the report names
the request that set each worst figure. The plain frame-by-frame log-mel stays as a figure.
Each axis is printed beside its noise floor: float32 against itself when its style vector
moves by 1e-7, through the same pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from parity.core.cache import content_digest
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore, array_digest, onnxruntime_parts
from parity.judge.comparators import OutputGain
from parity.judge.metrics import (
    aligned_distance,
    high_frequency_ratio,
    log_mel_distance,
    loudness_db,
    noise_floor_db,
)
from parity.judge.runners import KokoroOutput
from parity.judge.tolerances import STYLE_NUDGE, UNGATED, VariantTolerance

__all__ = [
    "AXES",
    "Axes",
    "NoiseFloor",
    "VariantQuality",
    "compare_variant",
    "judge_quantized",
    "level_gain",
    "measure_floor",
    "model_outputs",
    "moved_share",
    "nudged",
    "torch_outputs",
    "variant_quality",
]


@dataclass(frozen=True)
class Axes:
    """One figure per axis of the verdict over a request set: their mean, or the worst
    request's (``VariantQuality.axes`` / ``worst``). Length and loudness count in either
    direction; a noise floor that falls is no static, so its rise is taken as signed."""

    length_change: float  # |len / len(source) - 1|
    moved_tokens: float  # share of tokens whose frame count moved (NaN: no durations)
    aligned_mel: float  # |Δ log-mel|, timing removed, level matched
    mcd_db: float  # mel-cepstral distortion, timing removed
    floor_rise_db: float  # rise of the noise floor
    hf_ratio: float  # >6 kHz share over the source's
    loudness_db: float  # |level difference|

    def line(self) -> str:
        moved = "" if np.isnan(self.moved_tokens) else f"{self.moved_tokens:.1%} tokens moved, "
        return (
            f"{moved}length {self.length_change:.1%}; aligned log-mel {self.aligned_mel:.3f}, "
            f"MCD {self.mcd_db:.2f} dB; floor {self.floor_rise_db:+.2f} dB, >6 kHz "
            f"x{self.hf_ratio:.2f}; loudness {self.loudness_db:.2f} dB"
        )


AXES = tuple(Axes.__dataclass_fields__)


@dataclass(frozen=True)
class NoiseFloor:
    """Float32 against itself with its style moved by ``STYLE_NUDGE``, same pipeline: the
    axes' mean and worst request, what a variant's figures sit beside."""

    mean: Axes
    worst: Axes

    @classmethod
    def of(cls, figures: VariantQuality) -> NoiseFloor:
        """The floor from float32's figures against itself."""
        return cls(figures.axes(), figures.worst())

    def line(self) -> str:
        return f"mean {self.mean.line()}; worst {self.worst.line()}"


# Axes whose per-request figures count in either direction.
_UNSIGNED = ("length_change", "loudness_db")


@dataclass(frozen=True)
class VariantQuality:
    """Per-request figures of a variant against its source, the axes, and the verdict."""

    variant: str
    requests: tuple[str, ...]
    timing: str  # "forced" (same durations, frame i against frame i) or "dtw"
    length_change: tuple[float, ...]  # len(variant) / len(source) - 1
    moved_tokens: tuple[float, ...]  # share of tokens whose frame count moved
    mel: tuple[float, ...]  # plain frame-by-frame log-mel: a figure, not a verdict
    aligned_mel: tuple[float, ...]
    mcd_db: tuple[float, ...]
    floor_rise_db: tuple[float, ...]
    hf_ratio: tuple[float, ...]  # variant's share above 6 kHz over the source's
    loudness_db: tuple[float, ...]
    size_ratio: float
    tolerance: VariantTolerance
    floor: NoiseFloor | None  # float32 against itself, style moved by 1e-7
    failures: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.failures

    def axes(self) -> Axes:
        """Each axis's mean over the requests."""
        return Axes(**{axis: _mean(self._figures(axis)) for axis in AXES})

    def worst(self) -> Axes:
        """Each axis on its worst request."""
        return Axes(**{axis: _worst(self._figures(axis)) for axis in AXES})

    def worst_request(self, axis: str) -> str:
        """The request that set ``axis``'s worst figure ("-" when none is finite)."""
        figures = self._figures(axis)
        finite = [i for i, v in enumerate(figures) if np.isfinite(v)]
        return self.requests[max(finite, key=figures.__getitem__)] if finite else "-"

    def _figures(self, axis: str) -> tuple[float, ...]:
        values: tuple[float, ...] = getattr(self, axis)
        return tuple(abs(v) for v in values) if axis in _UNSIGNED else values

    def report(self) -> str:
        """The verdict, each failure, the mean and worst axes beside their floor, and the
        request that set each worst figure."""
        lines = [f"quantized verdict of {self.variant!r}: {'PASS' if self else 'FAIL'}"]
        lines += [f"  FAIL {failure}" for failure in self.failures]
        lines.append(
            f"  mean:  {self.axes().line()} over {len(self.requests)} requests, "
            f"timing {self.timing}"
        )
        lines.append(f"  worst: {self.worst().line()}")
        if self.floor is not None:
            lines.append(f"  noise floor, mean:  {self.floor.mean.line()}")
            lines.append(f"  noise floor, worst: {self.floor.worst.line()}")
        lines.append(
            "  worst requests: "
            + ", ".join(f"{axis} {self.worst_request(axis)}" for axis in AXES)
            + f"; size {self.size_ratio:.2f}x float32's"
        )
        return "\n".join(lines)

    def summary(self) -> str:
        verdict = "ok" if self else "FAILED: " + "; ".join(self.failures)
        floor = f" [floor: {self.floor.line()}]" if self.floor is not None else ""
        worst = self.worst_request("aligned_mel")
        return (
            f"{self.variant}: size {self.size_ratio:.2f}x; mean {self.axes().line()}; worst "
            f"{self.worst().line()} (aligned worst on {worst}; plain log-mel "
            f"{np.mean(self.mel):.2f}) over {len(self.requests)} requests, timing "
            f"{self.timing}{floor}: {verdict}"
        )


# NaN is a figure not measured (a graph without durations, audio shorter than a frame) and is
# left out; inf is a request whose audio was not finite, and it counts.
def _mean(values: tuple[float, ...]) -> float:
    kept = [v for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def _worst(values: tuple[float, ...]) -> float:
    kept = [v for v in values if not np.isnan(v)]
    return float(max(kept)) if kept else float("nan")


def _floor_db(waveform: np.ndarray) -> float:
    """``noise_floor_db``, or NaN for audio shorter than one analysis frame."""
    try:
        return noise_floor_db(waveform)
    except ValueError:
        return float("nan")


def _length_change(source: KokoroOutput, variant: KokoroOutput) -> float:
    """How much longer the variant would speak: from the durations it predicted when it was
    made to speak on the source's (forced timing), else from the waveforms."""
    if variant.forced and source.durations is not None and variant.durations is not None:
        return float(variant.durations.sum() / source.durations.sum() - 1)
    return len(variant.waveform) / len(source.waveform) - 1


def moved_share(source: KokoroOutput, variant: KokoroOutput) -> float:
    """Share of tokens whose predicted frame count differs; NaN where either has none."""
    if source.durations is None or variant.durations is None:
        return float("nan")
    if source.durations.shape != variant.durations.shape:
        return 1.0
    return float(np.mean(source.durations != variant.durations))


def compare_variant(
    name: str,
    source: Sequence[KokoroOutput],
    variant: Sequence[KokoroOutput],
    requests: Sequence[KokoroInput],
    *,
    size_ratio: float,
    tolerance: VariantTolerance,
    floor: NoiseFloor | None = None,
) -> VariantQuality:
    """Judge ``variant``'s outputs against ``source``'s for the same ``requests``. A request
    whose audio is not finite is infinitely far on every axis of sound, and named."""
    pairs = list(zip(source, variant, strict=True))
    finite = [_finite_audio(b) for _, b in pairs]
    forced = all(b.forced for _, b in pairs)

    def sound(measure: Callable[[np.ndarray, np.ndarray], float]) -> tuple[float, ...]:
        return tuple(
            measure(a.waveform, b.waveform) if ok else float("inf")
            for (a, b), ok in zip(pairs, finite, strict=True)
        )

    aligned = [
        aligned_distance(a.waveform, b.waveform, frames_match=forced) if ok else None
        for (a, b), ok in zip(pairs, finite, strict=True)
    ]
    figures = VariantQuality(
        name,
        tuple(r.name for r in requests),
        "forced" if forced else "dtw",
        tuple(_length_change(a, b) for a, b in pairs),
        tuple(moved_share(a, b) for a, b in pairs),
        sound(log_mel_distance),
        tuple(d.log_mel if d is not None else float("inf") for d in aligned),
        tuple(d.mcd_db if d is not None else float("inf") for d in aligned),
        sound(lambda a, b: _floor_db(b) - _floor_db(a)),
        sound(lambda a, b: high_frequency_ratio(b) / high_frequency_ratio(a)),
        sound(loudness_db),
        size_ratio,
        tolerance,
        floor,
        (),
    )
    broken = [r.name for r, ok in zip(requests, finite, strict=True) if not ok]
    not_finite = (
        (f"audio not finite on {len(broken)} of {len(pairs)} requests: {', '.join(broken)}",)
        if broken
        else ()
    )
    failures = _failures(figures.axes(), figures.worst(), size_ratio, tolerance)
    return replace(figures, failures=not_finite + failures)


def _finite_audio(output: KokoroOutput) -> bool:
    """Whether every sample is finite: a request that is not is left out of the gain and is
    infinitely far on every sound axis."""
    return bool(np.isfinite(output.waveform).all())


def _failures(
    mean: Axes, worst: Axes, size_ratio: float, tolerance: VariantTolerance
) -> tuple[str, ...]:
    """Each axis over its bound, on the mean and on the worst request, and the size."""
    checks = [
        (f"{how} {LABELS[axis]}", getattr(figures, axis), getattr(bounds, axis))
        for how, figures, bounds in (
            ("mean", mean, tolerance.mean),
            ("worst", worst, tolerance.worst),
        )
        for axis in AXES
        # a graph that reports no durations is judged on its length alone
        if not (axis == "moved_tokens" and np.isnan(getattr(figures, axis)))
    ]
    checks.append(("size ratio", size_ratio, tolerance.max_size_ratio))
    return tuple(
        f"{what} {value:.3g} > {bound:g}"
        for what, value, bound in checks
        if not np.isfinite(value) or value > bound
    )


LABELS = {
    "length_change": "length change",
    "moved_tokens": "share of tokens moved",
    "aligned_mel": "aligned log-mel",
    "mcd_db": "MCD (dB)",
    "floor_rise_db": "noise floor rise (dB)",
    "hf_ratio": ">6 kHz share ratio",
    "loudness_db": "loudness (dB)",
}


def model_outputs(
    path: Path,
    requests: Sequence[KokoroInput],
    reference: Sequence[KokoroOutput] | None = None,
    *,
    runs: RunStore | None = None,
    provider: str = "cpu",
) -> list[KokoroOutput]:
    """Run the ONNX model at ``path`` on ``requests`` (on ``provider``: ORT's CPU, or wasm or
    webgpu in Chromium): on the durations of ``reference`` where the graph can take them
    (``parity.builders.forced_timing``), else free-running.
    Outputs come from ``runs`` where it holds them; the model is loaded only for the rest."""
    from parity.builders.forced_timing import NoDurationChainError
    from parity.judge.runners import OrtRunner

    store = runs or RunStore(None)
    opened: list[OrtRunner] = []

    def runner() -> OrtRunner:
        if not opened:
            # Only a graph without a duration chain falls back to DTW; a rewired graph that
            # fails to load is an error, not a reason to judge with other timing.
            try:
                opened.append(OrtRunner(path, force_timing=True, provider=provider))
            except NoDurationChainError:
                opened.append(OrtRunner(path, provider=provider))
        return opened[0]

    def output_for(request: KokoroInput, durations: np.ndarray | None) -> KokoroOutput:
        def compute() -> dict[str, np.ndarray | None]:
            ran = runner()
            forcing = durations if ran.forcible else None
            output = ran.infer(request, forcing)
            return {
                "waveform": output.waveform,
                "durations": output.durations,
                "forced": np.asarray(output.forced),
            }

        parts = onnxruntime_parts(
            content_digest(Path(path)),
            request,
            "listen",  # the cache key of these runs since before the name changed
            threads=0,
            provider=provider,
            durations=array_digest(durations),
        )
        values = store.arrays("onnxruntime", parts, compute)
        return KokoroOutput(values["waveform"], values.get("durations"), bool(values["forced"]))

    if reference is None:
        return [output_for(request, None) for request in requests]
    # A reference that spoke on its own prediction reports the durations it spoke on.
    return [
        output_for(request, ref.durations if not ref.forced else None)
        for request, ref in zip(requests, reference, strict=True)
    ]


def variant_quality(
    name: str,
    path: Path,
    *,
    reference: Sequence[KokoroOutput],
    requests: Sequence[KokoroInput],
    size_ratio: float,
    tolerance: VariantTolerance,
    floor: NoiseFloor | None = None,
    runs: RunStore | None = None,
) -> tuple[VariantQuality, list[KokoroOutput]]:
    """Run the model at ``path`` on ``requests`` in ONNX Runtime and judge it against
    float32's ``reference`` outputs; the outputs come back too, to record or listen to."""
    outputs = model_outputs(path, requests, reference, runs=runs)
    quality = compare_variant(
        name, reference, outputs, requests, size_ratio=size_ratio, tolerance=tolerance, floor=floor
    )
    return quality, outputs


def nudged(requests: Sequence[KokoroInput]) -> list[KokoroInput]:
    """The requests with every style vector moved by ``STYLE_NUDGE`` (relative): the input
    change that measures a loss's noise floor."""
    return [replace(r, style=r.style * np.float32(1 + STYLE_NUDGE)) for r in requests]


def measure_floor(
    path: Path,
    requests: Sequence[KokoroInput],
    reference: Sequence[KokoroOutput],
    *,
    runs: RunStore | None = None,
) -> NoiseFloor:
    """Each axis's noise floor: the float32 model at ``path`` against its own ``reference``
    outputs when every style vector moves by ``STYLE_NUDGE`` (relative), same pipeline."""
    outputs = model_outputs(path, nudged(requests), reference, runs=runs)
    figures = compare_variant(
        "floor", reference, outputs, requests, size_ratio=1.0, tolerance=UNGATED
    )
    return NoiseFloor.of(figures)


def torch_outputs(
    model: object, requests: Sequence[KokoroInput], runs: RunStore | None = None
) -> list[KokoroOutput]:
    """PyTorch's free-running outputs for ``requests``, through the run store."""
    from parity.core.memo import torch_parts
    from parity.judge.runners import TorchRunner

    store = runs or RunStore(None)

    def output_for(request: KokoroInput) -> KokoroOutput:
        def compute() -> dict[str, np.ndarray | None]:
            output = TorchRunner(model).infer(request)
            return {"waveform": output.waveform, "durations": output.durations}

        values = store.arrays("torch", torch_parts(model, request, "speak"), compute)
        return KokoroOutput(values["waveform"], values["durations"])

    return [output_for(request) for request in requests]


def level_gain(reference: Sequence[KokoroOutput], outputs: Sequence[KokoroOutput]) -> OutputGain:
    """The variant's level over the reference's, over every request: the rms ratio, which a
    variant's own noise does not bias the way a least-squares fit's would."""
    finite = [(r, o) for r, o in zip(reference, outputs, strict=True) if _finite_audio(o)]
    energy = sum(float(np.sum(np.square(r.waveform, dtype=np.float64))) for r, _ in finite)
    ours = sum(float(np.sum(np.square(o.waveform, dtype=np.float64))) for _, o in finite)
    factor = float(np.sqrt(ours / energy)) if energy > 0 else float("nan")
    left_out = len(outputs) - len(finite)
    over = f", {left_out} whose audio is not finite left out" if left_out else ""
    return OutputGain(factor, f"rms ratio over the requests{over}")


def judge_quantized(
    name: str,
    model: object,
    path: Path,
    requests: Sequence[KokoroInput],
    *,
    tolerance: VariantTolerance,
    float_bytes: int,
    reference_file: Path | None = None,
    runs: RunStore | None = None,
    provider: str = "cpu",
) -> tuple[VariantQuality, OutputGain]:
    """A quantized file made elsewhere on ``requests``, against the float32 file it was made
    from (``reference_file``: the pipeline the variant bounds were measured with) or, without
    one, against PyTorch float32; the file runs on ``provider``, the reference on the CPU. It
    speaks on the reference's durations (``parity.builders.forced_timing``), its gain is
    measured first and taken out, and each axis sits beside the reference's own noise floor
    (its style moved by 1e-7)."""
    if reference_file is not None:
        reference = model_outputs(reference_file, requests, runs=runs)
        floor = measure_floor(reference_file, requests, reference, runs=runs)
        float_bytes = Path(reference_file).stat().st_size
    else:
        reference = torch_outputs(model, requests, runs)
        nudged_outputs = torch_outputs(model, nudged(requests), runs)
        # 1e-7 moves no duration here, so the floor's frames line up as a forced variant's do.
        same = [
            replace(o, forced=_same_durations(o, r))
            for o, r in zip(nudged_outputs, reference, strict=True)
        ]
        figures = compare_variant(
            "floor", reference, same, requests, size_ratio=1.0, tolerance=UNGATED
        )
        floor = NoiseFloor.of(figures)
    outputs = model_outputs(path, requests, reference, runs=runs, provider=provider)
    gain = level_gain(reference, outputs)
    unity = gain.factor if np.isfinite(gain.factor) and gain.factor > 0 else 1.0
    levelled = [replace(o, waveform=o.waveform / np.float32(unity)) for o in outputs]
    quality = compare_variant(
        name,
        reference,
        levelled,
        requests,
        size_ratio=Path(path).stat().st_size / float_bytes,
        tolerance=tolerance,
        floor=floor,
    )
    return quality, gain


def _same_durations(output: KokoroOutput, reference: KokoroOutput) -> bool:
    if output.durations is None or reference.durations is None:
        return False
    return bool(np.array_equal(output.durations, reference.durations))
