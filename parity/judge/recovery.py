"""The proof of recovered weights: the PyTorch model against the published graph it came from.

``parity.builders.recover`` maps the trained weights back onto ``KModel``; this module runs
both on held-out requests (durations, the waveform with the harmonic input forced, and
agreement with the published int8 export) and keeps every figure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from parity.builders.model import KModel
from parity.builders.recover import PUBLISHED_ISTFT_GAIN
from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput

__all__ = ["HELD_SENTENCES", "RecoveryCheck", "RecoveryProof", "check_recovery", "prove_recovery"]


@dataclass(frozen=True)
class RecoveryCheck:
    """PyTorch with recovered weights against the float32 ONNX they came from, one request.

    ``forced_rel`` is the waveform error with the generator's harmonic input (the STFT of
    the source) taken from the ONNX run: the published graph computes the source phase in
    float32 and lowers atan2 with -pi where torch gives +pi, so free-running the two differ
    by chaos in the phase channels (``free_rel``), not by their weights.
    """

    name: str
    tokens: int
    durations_equal: bool
    forced_rel: float
    free_rel: float


class PublishedGraph:
    """The published graph in ONNX Runtime, exposing its durations and harmonic input."""

    def __init__(self, path: Path) -> None:
        from parity.core.ort_session import open_session

        model = onnx.load(str(path))
        self.durations, self.harmonics = _published_taps(model)
        for name in (self.durations, self.harmonics):
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        # Through open_session: ORT's defaults, but the run's --threads.
        self.session: Any = open_session(Path(path), model_bytes=model.SerializeToString())

    def run(self, request: KokoroInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(audio at PyTorch's gain, per-token durations, harmonic input)."""
        feed = {
            "tokens": request.input_ids,
            "style": request.style.astype(np.float32),
            "speed": np.asarray([request.speed], dtype=np.float32),
        }
        audio, durations, harmonics = self.session.run(
            ["audio", self.durations, self.harmonics], feed
        )
        return audio.reshape(-1) / PUBLISHED_ISTFT_GAIN, durations.reshape(-1), harmonics


def _published_taps(model: onnx.ModelProto) -> tuple[str, str]:
    """Names of the predicted durations (Round -> Clip) and the first noise conv's input."""
    producers = {output: node for node in model.graph.node for output in node.output}
    durations = [
        node.output[0]
        for node in model.graph.node
        if node.op_type == "Clip" and producers.get(node.input[0], node).op_type == "Round"
    ]
    harmonics = [n.input[0] for n in model.graph.node if n.name.endswith("noise_convs.0/Conv")]
    if len(durations) != 1 or len(harmonics) != 1:
        raise ParityError(
            "recover: the ONNX model has no single duration head (Round -> Clip) or "
            "noise_convs.0 Conv; is it kokoro-onnx's Kokoro-82M export?"
        )
    return durations[0], harmonics[0]


@contextlib.contextmanager
def forced_harmonics(model: KModel, harmonics: np.ndarray) -> Iterator[None]:
    """Make the generator read ``harmonics`` ([1, 2 * bins, frames]) as its source's STFT."""
    stft = model.decoder.generator.stft
    tensor = torch.from_numpy(harmonics)
    bins = tensor.shape[1] // 2
    stft.transform = lambda _waveform: (tensor[:, :bins], tensor[:, bins:])
    try:
        yield
    finally:
        del stft.transform


def _relative(reference: np.ndarray, candidate: np.ndarray) -> float:
    if len(reference) != len(candidate):
        return float("inf")
    return float(np.linalg.norm(candidate - reference) / np.linalg.norm(reference))


def _check_one(
    graph: PublishedGraph, model: KModel, request: KokoroInput
) -> tuple[RecoveryCheck, np.ndarray]:
    """One request through both; also the free-running PyTorch waveform."""
    from parity.judge.runners import TorchRunner

    runner = TorchRunner(model)
    audio, durations, harmonics = graph.run(request)
    free = runner.infer(request)
    with forced_harmonics(model, harmonics):
        forced = runner.infer(request)
    check = RecoveryCheck(
        name=request.name,
        tokens=len(request.phonemes),
        durations_equal=free.durations is not None
        and np.array_equal(free.durations, durations.astype(np.int64)),
        forced_rel=_relative(audio, forced.waveform),
        free_rel=_relative(audio, free.waveform),
    )
    return check, free.waveform


def check_recovery(
    model: KModel, published: Path, requests: Sequence[KokoroInput]
) -> list[RecoveryCheck]:
    """Run both on each request: durations, forced and free-running waveform error."""
    graph = PublishedGraph(published)
    return [_check_one(graph, model, request)[0] for request in requests]


def louder(waveform: np.ndarray) -> np.ndarray:
    """PyTorch Kokoro's waveform at the published export's gain, to compare the two by ear."""
    return np.asarray(waveform, dtype=np.float32) * PUBLISHED_ISTFT_GAIN


def describe(checks: Sequence[RecoveryCheck]) -> dict[str, Any]:
    """The figures of a set of checks, for the summary and the report."""
    return {
        "requests": len(checks),
        "durations_equal": sum(check.durations_equal for check in checks),
        "forced_rel_max": max(check.forced_rel for check in checks),
        "free_rel_max": max(check.free_rel for check in checks),
    }


# Sentences of the input fixture that no calibration or sweep uses: the proof's held set.
HELD_SENTENCES = ("tongue-twister", "numbers")


@dataclass(frozen=True)
class Int8Agreement:
    """The recovered PyTorch model (at the export's gain) against the int8 export it came from."""

    name: str
    length_ratio: float  # recovered audio length / int8 audio length
    log_mel: float


@dataclass(frozen=True)
class RecoveryProof:
    """Recovered PyTorch against its float32 ONNX (exact) and the int8 export (within noise)."""

    checks: list[RecoveryCheck]
    against_int8: list[Int8Agreement]
    between_voices: list[float]  # log-mel distances between voices on the same sentence

    @property
    def noise_to_voice_ratio(self) -> float:
        """Mean int8 distance over mean between-voice distance: how far under a voice change."""
        within = np.mean([row.log_mel for row in self.against_int8])
        return float(within / np.mean(self.between_voices))

    def summary(self) -> str:
        figures = describe(self.checks)
        lengths = [abs(row.length_ratio - 1) for row in self.against_int8]
        mels = [row.log_mel for row in self.against_int8]
        return (
            f"{figures['requests']} requests: durations equal in {figures['durations_equal']}, "
            f"waveform error {figures['forced_rel_max']:.1e} with the harmonic input forced "
            f"({figures['free_rel_max']:.2f} free-running); against int8: length within "
            f"{max(lengths):.1%}, log-mel {min(mels):.2f} to {max(mels):.2f} vs "
            f"{min(self.between_voices):.2f} to {max(self.between_voices):.2f} between voices "
            f"(ratio {self.noise_to_voice_ratio:.2f})"
        )

    def write(self, folder: Path) -> Path:
        """``recovery.json`` with every figure."""
        import json

        from parity.core.cache import write_text_atomic
        from parity.core.jsonable import to_jsonable

        target = Path(folder) / "recovery.json"
        document = {
            "summary": self.summary(),
            "noise_to_voice_ratio": self.noise_to_voice_ratio,
            **to_jsonable(self),
        }
        write_text_atomic(target, json.dumps(document, indent=2) + "\n")
        return target


def prove_recovery(
    model: KModel,
    fp32: Path,
    int8: Path,
    requests: Sequence[KokoroInput],
    mel_png: Path | None = None,
) -> RecoveryProof:
    """Check the recovered model on ``requests`` (sentences x voices, named ``sentence/voice``)
    against both exports; draw the first request's mel spectrograms to ``mel_png``."""
    from parity.core.plots import draw, mel_comparison
    from parity.judge.metrics import MEL, log_mel, log_mel_distance
    from parity.judge.runners import OrtRunner

    graph, quantized = PublishedGraph(fp32), OrtRunner(int8)
    checks, agreements, recovered = [], [], {}
    for request in requests:
        check, free = _check_one(graph, model, request)
        checks.append(check)
        reference = quantized.infer(request).waveform
        audio = louder(free)
        recovered[request.name] = audio
        agreements.append(
            Int8Agreement(
                request.name, len(audio) / len(reference), log_mel_distance(reference, audio)
            )
        )
        if mel_png is not None and len(recovered) == 1:
            pair = {"published int8": reference, "recovered PyTorch (x1.5 gain)": audio}
            mels = {name: log_mel(waveform) for name, waveform in pair.items()}
            draw(mel_comparison, mel_png, mels, f"{request.name}: int8 export vs recovered", MEL)
    between = [
        log_mel_distance(recovered[a], recovered[b])
        for i, a in enumerate(recovered)
        for b in list(recovered)[i + 1 :]
        if a.split("/")[0] == b.split("/")[0]
    ]
    return RecoveryProof(checks, agreements, between)
