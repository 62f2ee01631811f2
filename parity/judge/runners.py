"""Runners: PyTorch and ONNX Runtime behind one ``infer(KokoroInput) -> KokoroOutput``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parity.core.config import CPU_PROVIDERS
from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.interface import PREDICTED_OUTPUT, session_interface
from parity.core.ort_session import open_session
from parity.core.spec import SAMPLE_RATE

__all__ = ["KokoroOutput", "OrtRunner", "TorchRunner"]


@dataclass(frozen=True)
class KokoroOutput:
    """A waveform at 24 kHz and the per-token durations the model predicted (None where the
    model gives none); ``forced`` when the waveform was made on durations the caller gave
    (``parity.builders.forced_timing``), so its frames line up with the run those durations
    came from."""

    waveform: np.ndarray = field(repr=False)
    durations: np.ndarray | None = field(repr=False)
    forced: bool = False

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


class OrtRunner:
    """An ONNX Kokoro in ONNX Runtime's CPU provider (with ``provider`` cpu-fp16, in float16
    arithmetic: ``parity.builders.fp16.arithmetic``; with wasm or webgpu, onnxruntime-web in
    Chromium or Dawn: ``parity.judge.browser_session``), whatever its inputs and outputs are
    named (``parity.core.interface``): ours, the blog post's ``KModelForONNX`` export, kokoro-onnx's
    (``tokens`` -> ``audio``, no durations) and kokoro-js's. With ``force_timing`` the graph is
    rewired (``parity.builders.forced_timing.force_timing``) so ``infer`` can take the
    durations from outside, and every graph reports the durations it predicted.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 0,
        optimization: str = "all",
        model_bytes: bytes | None = None,
        force_timing: bool = False,
        profile_prefix: str | None = None,
        provider: str = "cpu",
    ) -> None:
        self.path = Path(path)
        self.provider = provider
        arithmetic = provider == "cpu-fp16"
        if force_timing or arithmetic:
            model_bytes = _rewritten_bytes(
                self.path, model_bytes, force_timing=force_timing, float16_arithmetic=arithmetic
            )
        self.session: Any
        if provider in CPU_PROVIDERS:
            self.session = open_session(
                self.path,
                threads=threads,
                optimization=optimization,
                model_bytes=model_bytes,
                profile_prefix=profile_prefix,
            )
        else:
            from parity.judge.browser_session import BrowserSession

            if profile_prefix is not None or optimization != "all":
                raise ParityError(f"{provider}: profiling and optimization levels are CPU-only")
            self.session = BrowserSession(
                self.path, provider=provider, threads=threads, model_bytes=model_bytes
            )
        self.interface = session_interface(self.session, str(self.path))
        self.forcible = self.interface.forced_durations is not None
        self.audio_name = self.interface.waveform
        self.durations_name = self.interface.durations

    def run(
        self,
        request: KokoroInput,
        names: list[str] | None = None,
        durations: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """Raw session outputs for ``request`` (all outputs unless ``names`` is given);
        a forcible graph runs on ``durations`` (one frame per token when None)."""
        feed = self.interface.feed(request.input_ids, request.style, request.speed, durations)
        return self.session.run(names, feed)

    def infer(self, request: KokoroInput, durations: np.ndarray | None = None) -> KokoroOutput:
        """Audio and predicted durations; a forcible graph speaks on ``durations`` when given,
        else on the ones it predicts (found first by a short run on one frame per token)."""
        names = [self.audio_name] + ([self.durations_name] if self.durations_name else [])
        given = durations is not None
        if given and not self.forcible:
            raise ParityError(f"{self.path}: durations can only be forced with force_timing=True")
        if self.forcible and durations is None:
            durations = self.run(request, [PREDICTED_OUTPUT])[0]
        if durations is not None and np.size(durations) != request.input_ids.size:
            raise ParityError(
                f"{request.name}: {np.size(durations)} forced durations for "
                f"{request.input_ids.size} tokens; give one per token, boundaries included"
            )
        outputs = self.run(request, names, durations)
        predicted = outputs[1].astype(np.int64).reshape(-1) if self.durations_name else None
        return KokoroOutput(outputs[0].astype(np.float32).reshape(-1), predicted, forced=given)


def _rewritten_bytes(
    path: Path, model_bytes: bytes | None, *, force_timing: bool, float16_arithmetic: bool
) -> bytes:
    """The model at ``path`` (or in ``model_bytes``), loaded and serialized once, with its
    timing as an input and/or computing float16 arithmetic on the CPU."""
    import onnx

    from parity.builders import forced_timing
    from parity.builders.fp16 import arithmetic
    from parity.core.graph import load_model
    from parity.judge.intermediate import value_types

    model = load_model(path) if model_bytes is None else onnx.load_from_string(model_bytes)
    if force_timing:
        model = forced_timing.force_timing(model)
    if float16_arithmetic:
        model = arithmetic.float16_arithmetic(model, value_types(model))
    return model.SerializeToString()
