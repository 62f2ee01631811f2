"""A Kokoro file made anywhere, judged by the verdict of its precision.

``read_graph`` says what the file is; this module picks the verdict that fits it and runs it:
float32 by the staged parity bounds (``FP32``), float16 by ``FP16``, and a quantized file by
the four-axis verdict against its float32 reference (the file it was made from, else PyTorch)
on the held-out requests. The CLI's ``parity compare`` and the pytest gates both come here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from parity.core.errors import ParityError
from parity.core.inputs import KokoroInput
from parity.core.memo import RunStore
from parity.core.spec import AUTO
from parity.judge.checks import StagedParity, check_against_pytorch
from parity.judge.comparators import OutputGain
from parity.judge.detect import GraphFacts
from parity.judge.forcing import ForcingSession
from parity.judge.quality import VariantQuality, judge_quantized
from parity.judge.tolerances import (
    FP16,
    FP16_ARITHMETIC,
    FP32,
    QUANTIZED_FILE,
    WEBGPU_FP32,
    StagedTolerance,
)

__all__ = [
    "STAGED",
    "Choice",
    "choose_verdict",
    "judge_float",
    "judge_quantized_file",
    "staged_tolerance",
]

STAGED: dict[str, StagedTolerance] = {"fp32": FP32, "fp16": FP16}
# A backend's own bounds where its kernels differ from the CPU's (docs/webgpu.md); a
# precision and provider not listed are judged by STAGED, as measured there.
# Backends that compute float16 op by op in float16 (FP16 was measured where ORT CPU computes
# a float16 file in float32): parity.judge.tolerances.staged.
STAGED_ON: dict[tuple[str, str], StagedTolerance] = {
    ("fp32", "webgpu"): WEBGPU_FP32,
    ("fp16", "webgpu"): FP16_ARITHMETIC,
    ("fp16", "cpu-fp16"): FP16_ARITHMETIC,
}


def staged_tolerance(precision: str, provider: str = "cpu") -> StagedTolerance:
    """The staged check's bounds for a file of ``precision`` running on ``provider``."""
    return STAGED_ON.get((precision, provider), STAGED[precision])


VERDICTS = {
    "fp32": "staged parity against PyTorch float32, float32 bounds (FP32)",
    "fp16": "staged parity against PyTorch float32, float16 bounds (FP16; FP16_ARITHMETIC "
    "where every op rounds to float16: webgpu, cpu-fp16)",
    "quantized": "four axes (timing, sound, static, loudness) against its float32 reference "
    "on the held-out requests, bounds the published int8 meets (QUANTIZED_FILE)",
}


@dataclass(frozen=True)
class Choice:
    """Which verdict judges a file, and why."""

    precision: str
    reason: str

    def describe(self) -> str:
        return f"verdict: {VERDICTS[self.precision]}; because {self.reason}"


def choose_verdict(facts: GraphFacts, override: str = AUTO) -> Choice:
    """The detected precision's verdict, or the one ``override`` (``--precision``) names."""
    if override == AUTO:
        return Choice(
            facts.precision, f"the file reads as {facts.precision}: {facts.precision_reason}"
        )
    if override not in VERDICTS:
        raise ParityError(f"precision {override!r}: choose one of auto, {', '.join(VERDICTS)}")
    detected = f"{facts.precision} ({facts.precision_reason})"
    return Choice(override, f"--precision {override} overrides the detected {detected}")


def judge_float(
    model: object,
    path: Path,
    requests: Sequence[KokoroInput],
    choice: Choice,
    *,
    threads: int = 0,
    runs: RunStore | None = None,
    scopes: Mapping[str, str] | None = None,
    max_gain_db: float | None = None,
    provider: str = "cpu",
) -> tuple[StagedParity, ...]:
    """The staged check of a float file on ``provider``, by the bounds of its precision."""
    session = ForcingSession(path, threads=threads, runs=runs, scopes=scopes, provider=provider)
    tolerance = staged_tolerance(choice.precision, provider)
    return tuple(
        check_against_pytorch(model, session, request, tolerance, max_gain_db=max_gain_db)
        for request in requests
    )


def judge_quantized_file(
    name: str,
    model: object,
    path: Path,
    requests: Sequence[KokoroInput],
    *,
    reference: Path | None = None,
    runs: RunStore | None = None,
    provider: str = "cpu",
) -> tuple[VariantQuality, OutputGain]:
    """The four-axis verdict of a quantized file (run on ``provider``) against the float32
    file it came from (on the CPU), else against PyTorch float32; its size is set against the
    reference file's, else against float32's (4 bytes for each of the model's parameters)."""
    parameters = sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]
    return judge_quantized(
        name,
        model,
        path,
        requests,
        tolerance=QUANTIZED_FILE,
        float_bytes=4 * parameters,
        reference_file=reference,
        runs=runs,
        provider=provider,
    )
