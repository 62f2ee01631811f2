"""Runners: PyTorch and ONNX Runtime behind one ``infer(KokoroInput) -> KokoroOutput``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.errors import ParityError, first_line
from parity.inputs import KokoroInput
from parity.model import SAMPLE_RATE

__all__ = ["KokoroOutput", "OrtRunner", "TorchRunner", "open_session", "require_onnx_file"]


@dataclass(frozen=True)
class KokoroOutput:
    """A waveform at 24 kHz and the per-token durations (None where the model gives none)."""

    waveform: np.ndarray = field(repr=False)
    durations: np.ndarray | None = field(repr=False)

    @property
    def seconds(self) -> float:
        return len(self.waveform) / SAMPLE_RATE


class TorchRunner:
    """``KModel.forward_with_tokens`` on numpy inputs."""

    name = "torch"

    def __init__(self, model: object) -> None:
        self.model = model

    def infer(self, request: KokoroInput) -> KokoroOutput:
        import torch

        with torch.no_grad():
            audio, durations = self.model.forward_with_tokens(  # type: ignore[attr-defined]
                torch.from_numpy(request.input_ids),
                torch.from_numpy(request.style),
                request.speed,
            )
        return KokoroOutput(
            audio.numpy().astype(np.float32).reshape(-1),
            durations.numpy().astype(np.int64).reshape(-1),
        )


def require_onnx_file(path: Path) -> None:
    """One clear line for a model path that names no file."""
    if not path.is_file():
        raise ParityError(f"{path}: no such ONNX file; export one with `parity export -o {path}`")


def open_session(
    path: Path, *, threads: int = 0, optimization: str = "all", model_bytes: bytes | None = None
) -> object:
    """An ONNX Runtime CPU session, with one clear error line for a missing or broken file.

    ``model_bytes`` loads a transformed model held in memory; ``path`` then names it in errors.
    """
    import onnxruntime as ort

    path = Path(path)
    if model_bytes is None:
        require_onnx_file(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    try:
        source = model_bytes if model_bytes is not None else str(path)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...)
        raise ParityError(
            f"{path}: ONNX Runtime cannot load it ({type(error).__name__}: "
            f"{first_line(error, 200)}); "
            "if it is truncated or corrupt, export it again"
        ) from error


class OrtRunner:
    """An ONNX Kokoro in ONNX Runtime's CPU provider; takes our interface and kokoro-onnx's.

    Ours: ``input_ids, style, speed -> waveform, durations``; the published kokoro-onnx
    export: ``tokens, style, speed -> audio`` (no durations).
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 0,
        optimization: str = "all",
        model_bytes: bytes | None = None,
    ) -> None:
        self.path = Path(path)
        self.session = open_session(
            self.path, threads=threads, optimization=optimization, model_bytes=model_bytes
        )
        inputs = [i.name for i in self.session.get_inputs()]  # type: ignore[attr-defined]
        outputs = [o.name for o in self.session.get_outputs()]  # type: ignore[attr-defined]
        self.ids_name = "tokens" if "tokens" in inputs else "input_ids"
        self.audio_name = "audio" if "audio" in outputs else "waveform"
        self.durations_name = "durations" if "durations" in outputs else None
        expected = {self.ids_name, "style", "speed"}
        if set(inputs) != expected or self.audio_name not in outputs:
            raise ParityError(
                f"{self.path}: inputs {inputs} / outputs {outputs} are not a Kokoro interface "
                "(input_ids|tokens, style, speed -> waveform|audio[, durations])"
            )

    def run(self, request: KokoroInput, names: list[str] | None = None) -> list[np.ndarray]:
        """Raw session outputs for ``request`` (all outputs unless ``names`` is given)."""
        feed = {
            self.ids_name: request.input_ids,
            "style": request.style.astype(np.float32),
            "speed": np.asarray([request.speed], dtype=np.float32),
        }
        return self.session.run(names, feed)  # type: ignore[attr-defined]

    def infer(self, request: KokoroInput) -> KokoroOutput:
        names = [self.audio_name] + ([self.durations_name] if self.durations_name else [])
        outputs = self.run(request, names)
        durations = outputs[1].astype(np.int64).reshape(-1) if self.durations_name else None
        return KokoroOutput(outputs[0].astype(np.float32).reshape(-1), durations)
