"""Candidate builds: one model with a chosen set of nodes transformed, built and measured on
fixed requests, its loss kept in the run store."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from parity.core.cache import content_digest
from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore
from parity.judge.metrics import MEL, aligned_distance, noise_floor_db
from parity.judge.tolerances import STYLE_NUDGE

if TYPE_CHECKING:
    from parity.judge.runners import KokoroOutput

from parity.search.sensitivity.result import (
    WEIGHT_OPS,
    Loss,
    Transform,
)

# The code behind one measured build (transform, run, loss), by transform: its source is in
# the run key, so editing the float16 converter does not re-measure an int8 sweep.
_MEASURE_MODULES = (
    "search/sensitivity/candidates.py",
    "judge/quality.py",
    "judge/metrics.py",
    "judge/runners.py",
    "builders/forced_timing.py",
)
_TRANSFORM_MODULES = {
    "fp16": ("builders/fp16",),
    "int8-dynamic": ("builders/quantize.py",),
    "int8-qdq": ("builders/quantize.py", "builders/calibration.py"),
    "int8-gemm": ("builders/conv_gemm.py",),
}


def mean_log_mel(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Log-mel distance with timing removed (``parity.judge.metrics.aligned_distance``): frame i
    against frame i when the lengths match, as they do when the sweep forces the source's
    durations (``parity.builders.forced_timing``); aligned by DTW when they do not."""
    same = len(reference) == len(candidate)
    return aligned_distance(reference, candidate, frames_match=same).log_mel


def weight_nodes(model: onnx.ModelProto, transform: Transform) -> list[onnx.NodeProto]:
    """Nodes whose second input is a stored weight and that ``transform`` can change."""
    from parity.builders.quantize import QuantRecipe

    ops = {"fp16": WEIGHT_OPS, "int8-gemm": ("Conv",)}.get(transform, QuantRecipe().op_types)
    stored = {tensor.name for tensor in model.graph.initializer}
    return [
        node
        for node in model.graph.node
        if node.op_type in ops and len(node.input) > 1 and node.input[1] in stored
    ]


def scope_of(name: str, depth: int) -> str:
    """The first ``depth`` scope components of a node name, as a prefix ending in '/'."""
    parts = [part for part in name.split("/") if part][:-1]  # the last part is the op
    return "/" + "/".join(parts[:depth]) + "/" if parts else name


def group_by_scope(nodes: Sequence[onnx.NodeProto], depth: int) -> dict[str, list[onnx.NodeProto]]:
    grouped: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        grouped.setdefault(scope_of(node.name, depth), []).append(node)
    return grouped


class CandidateBench:
    """Builds transformed copies of one model and measures them on fixed requests."""

    def __init__(  # noqa: PLR0917 - private, called once
        self,
        source: Path,
        transform: Transform,
        requests: Sequence[KokoroInput],
        calibration: Sequence[KokoroInput],
        loss: Loss,
        scratch: Path,
        max_moved_tokens: float = float("inf"),
        runs: RunStore | None = None,
    ) -> None:
        from parity.judge.quality import model_outputs, nudged

        self.runs = runs or RunStore(None)
        self.max_moved_tokens = max_moved_tokens
        self.source, self.transform, self.requests = source, transform, list(requests)
        self.calibration, self.loss, self.scratch = list(calibration), loss, scratch
        # Every candidate speaks on the source's durations, so a loss is what the transform
        # did to the sound, not where a rounded duration shifted the frames.
        self.reference = model_outputs(source, self.requests, runs=self.runs)
        self.floor = float(np.mean([_floor(out.waveform) for out in self.reference]))
        nudged_outputs = model_outputs(
            source, nudged(self.requests), self.reference, runs=self.runs
        )
        self.nudge_floor = self._loss(nudged_outputs)
        self.pipeline_floor = float("nan")  # set by the Sweeper: one build, nothing transformed
        self.builds = 0

    @property
    def loss_floor(self) -> float:
        """The larger of the two ways the source differs from itself: its style moved by
        1e-7, and the transform's pipeline run with no node transformed (graph rewriting
        alone changes rounding, which chaos then amplifies)."""
        return float(np.nanmax([self.nudge_floor, self.pipeline_floor]))

    def _loss(self, outputs: Sequence[KokoroOutput]) -> float:
        pairs = zip(self.reference, outputs, strict=True)
        return float(np.mean([self.loss(ref.waveform, out.waveform) for ref, out in pairs]))

    def require_above_floor(self, threshold: float, what: str) -> None:
        """One line, and no sweep, when no group could be told from chaos."""
        if not threshold > self.loss_floor:
            raise ParityError(
                f"sensitivity: the {what} {threshold:g} is not above the loss's noise floor "
                f"{self.loss_floor:.3f} (the source against itself: {self.nudge_floor:.3f} with "
                f"its style moved by {STYLE_NUDGE:g}, {self.pipeline_floor:.3f} through the "
                "transform with no node transformed): no group can be told from chaos; raise "
                f"the {what} above {self.loss_floor:.3f}, or sweep a model whose audio is stable"
            )

    def measure(self, transformed: set[str], all_nodes: set[str]) -> tuple[float, float, float]:
        """(loss, noise-floor rise in dB, share of tokens moved) when exactly the
        ``transformed`` nodes change; from the run store when this very build was measured."""
        from parity.core.memo import array_digest, request_digest, source_digest

        keep = sorted(all_nodes - transformed)
        self.builds += 1
        parts = {
            "source": content_digest(self.source),
            "transform": self.transform,
            "kept": hashlib.sha256("\n".join(keep).encode()).hexdigest(),
            "requests": [request_digest(r) for r in self.requests],
            "calibration": [request_digest(r) for r in self.calibration],
            "reference": array_digest(*[r.waveform for r in self.reference]),
            "loss": getattr(self.loss, "__name__", repr(self.loss)),
            "code": source_digest(
                (*_MEASURE_MODULES, *_TRANSFORM_MODULES[self.transform]),
                ("onnxruntime", "onnx", "numpy", "librosa"),
            ),
        }
        figures = self.runs.record("sweep", parts, lambda: list(self._build_and_measure(keep)))
        return float(figures[0]), float(figures[1]), float(figures[2])

    def _ranges(self) -> Path | None:
        """The static transform's activation ranges, calibrated once per sweep: its builds
        differ only in what they leave in float, which calibration does not see."""
        if self.transform != "int8-qdq":
            return None
        from parity.builders.calibration import calibrate_ranges
        from parity.builders.quantize import OP_TYPES

        path = self.scratch / "ranges.json"
        if not path.is_file():
            calibrate_ranges(self.source, path, "minmax", self.calibration, OP_TYPES)
        return path

    def _build_and_measure(self, keep: list[str]) -> tuple[float, float, float]:
        from parity.judge.quality import model_outputs

        target = self.scratch / f"candidate-{self.builds}.onnx"
        if self.transform == "fp16":
            from parity.builders.fp16 import Fp16Options, convert_file

            convert_file(self.source, target, Fp16Options(block_nodes=frozenset(keep)))
        elif self.transform == "int8-gemm":
            self._rewrite_as_gemm(target, set(keep))
        else:
            from parity.builders.quantize import QuantRecipe, quantize_model

            recipe = QuantRecipe(
                mode="dynamic" if self.transform == "int8-dynamic" else "qdq",
                exclude_nodes=tuple(keep),
                exclude_scopes=(),
                preprocess=False,
            )
            quantize_model(self.source, target, recipe, self.calibration, self._ranges())
        outputs = model_outputs(target, self.requests, self.reference)
        target.unlink()
        static = float(np.mean([_floor(out.waveform) for out in outputs])) - self.floor
        return self._loss(outputs), static, _moved_share(self.reference, outputs)

    def _rewrite_as_gemm(self, target: Path, keep: set[str]) -> None:
        """Every conv but ``keep`` as an int8 GEMM with dynamic scales (conv_gemm)."""
        from parity.builders.conv_gemm import rewrite_convs_as_gemm

        model = onnx.load(str(self.source))
        chosen = {n.name for n in weight_nodes(model, "int8-gemm") if n.name not in keep}
        rewrite_convs_as_gemm(model, (), "dynamic", names=chosen)
        onnx.save(model, str(target))


def _moved_share(reference: Sequence[KokoroOutput], outputs: Sequence[KokoroOutput]) -> float:
    """Mean share of tokens whose predicted frame count differs; NaN without durations."""
    from parity.judge.quality import moved_share

    shares = [moved_share(a, b) for a, b in zip(reference, outputs, strict=True)]
    finite = [share for share in shares if np.isfinite(share)]
    return float(np.mean(finite)) if finite else float("nan")


def _floor(waveform: np.ndarray) -> float:
    """``noise_floor_db``, or NaN where the audio is shorter than one frame or not finite."""
    if len(waveform) < MEL.n_fft or not np.isfinite(waveform).all():
        return float("nan")
    return noise_floor_db(waveform)
