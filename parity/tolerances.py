"""Every tolerance of the harness, each with the measurement it was set from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parity.compare import TensorComparison


@dataclass(frozen=True)
class StagedTolerance:
    """An export in ONNX Runtime against PyTorch float32 (``parity.checks``: three parts)."""

    stage_rms_rel: float
    source_rms_rel: float
    forced_rms_rel: float
    forced_max_rel: float
    free_mel: float

    def describe(self) -> str:
        return (
            f"generator inputs rms_rel <= {self.stage_rms_rel:g}, source rms_rel <= "
            f"{self.source_rms_rel:g}, forced generator rms_rel <= {self.forced_rms_rel:g} and "
            f"max_rel <= {self.forced_max_rel:g}, free-running log-mel <= {self.free_mel:g}"
        )


# Measured 2026-11-25, ORT 1.32 CPU / torch 2.13, full preset seed 0, on the fixture cases
# one-token (0.1 s of audio) / sentence (3.5 s) / context-limit (60 s):
#   generator inputs rms_rel 1.3e-4 / 5.3e-6 / 6.4e-6 (few elements in the one-token case)
#   harmonic source rms_rel 9.8e-8 / 9.7e-8 / 9.7e-8
#   forced generator rms_rel 3.2e-5 / 3.6e-6 / 1.5e-5, max_rel 2.9e-5 / 3.0e-6 / 1.8e-5
#   free-running log-mel 0.009 / 0.075 / 0.197; the model's own spread when its style moves
#   by 1e-7 (relative) is 0.020 / 0.040 / 0.158, so the free-running bound covers chaos,
#   not export error, and grows with length. A dropped bias or a wrong STFT scale moves
#   the forced figures by orders of magnitude (tests/test_intermediate_parity.py).
FP32 = StagedTolerance(
    stage_rms_rel=1e-3,
    source_rms_rel=1e-5,
    forced_rms_rel=5e-4,
    forced_max_rel=5e-4,
    free_mel=0.4,
)


# Measured 2026-11-25, ORT 1.32 CPU / torch 2.13, full preset seed 0, the float16 variant with
# ``parity.fp16.KOKORO_BLOCK_SCOPES`` kept float32, on one-token / sentence / context-limit:
#   durations identical on all three (with the duration head in float16, 2 of 510 tokens of
#   the context-limit case moved by one frame; so does a 4.9e-4 relative style change in fp32)
#   generator inputs rms_rel 0.057 / 0.0048 / 0.0054 (one-token: 3 frames of instance norm)
#   harmonic source rms_rel 9.4e-8 / 9.7e-8 / 9.7e-8 (kept float32)
#   forced generator rms_rel 0.0011 / 0.0011 / 0.0011, max_rel 0.0013 / 0.0017 / 0.0011
#   free-running log-mel 0.59 / 0.49 / 0.58: float32 itself moves 0.33 / 0.46 when its style
#   moves by float16's rounding (4.9e-4 relative), so this bound covers chaos only.
#   With the STFT analysis in float16 the forced generator is 0.36 to 0.6 rms off (its phase
#   snaps at near-zero bins), 300x the bound: the forced part is the one that discriminates.
FP16 = StagedTolerance(
    stage_rms_rel=0.1,
    source_rms_rel=1e-5,
    forced_rms_rel=5e-3,
    forced_max_rel=5e-3,
    free_mel=0.8,
)
# float16 weights must at least halve the file; Kokoro's measures 0.50x with its block list.
FP16_MAX_SIZE_RATIO = 0.55


@dataclass(frozen=True)
class IntermediateTolerance:
    """Each module boundary of the intermediate walk (``parity.localize``)."""

    rms_rel: float
    forced_rms_rel: float

    def accepts(self, comparison: TensorComparison, *, forced: bool) -> bool:
        bound = self.forced_rms_rel if forced else self.rms_rel
        return comparison.finite and comparison.rms_rel <= bound

    def describe(self) -> str:
        return f"rms_rel <= {self.rms_rel:g} free, <= {self.forced_rms_rel:g} forced"


# Measured 2026-11-25, ORT 1.32 CPU / torch 2.13, full preset seed 0, 41 module outputs:
#   worst free-running row rms_rel 7.5e-6 (sentence; predictor.N_proj), 1.3e-4 (one-token,
#   decoder.decode.3: 6 frames); worst forced row 3.6e-6 (sentence), 3.2e-5 (one-token).
#   Planted faults (tests/test_intermediate_parity.py) give 0.019 (a dropped AdaIN bias in the
#   decoder, PyTorch side) to 0.89 (STFT imaginary sign) at their module, so 1e-3 sits 8x
#   above the worst clean row and 19x below the mildest fault.
INTERMEDIATE = IntermediateTolerance(rms_rel=1e-3, forced_rms_rel=1e-3)
