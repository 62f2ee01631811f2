"""Every tolerance of the harness, each with the measurement it was set from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parity.judge.compare import TensorComparison
    from parity.judge.source import SourceDistribution


@dataclass(frozen=True)
class StagedTolerance:
    """An export in ONNX Runtime against PyTorch float32 (``parity.judge.checks``: three parts)."""

    stage_rms_rel: float
    source_rms_rel: float
    harmonics_rms_rel: float  # the source's STFT, compared as complex numbers
    forced_rms_rel: float
    forced_max_rel: float
    free_mel: float

    def describe(self) -> str:
        return (
            f"generator inputs rms_rel <= {self.stage_rms_rel:g}, source rms_rel <= "
            f"{self.source_rms_rel:g}, its STFT rms_rel <= {self.harmonics_rms_rel:g}, forced "
            f"generator rms_rel <= {self.forced_rms_rel:g} and "
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
    harmonics_rms_rel=1e-4,
    forced_rms_rel=5e-4,
    forced_max_rel=5e-4,
    free_mel=0.4,
)


# Measured 2026-11-25, ORT 1.32 CPU / torch 2.13, full preset seed 0, the float16 variant
# with ``parity.builders.fp16.KOKORO_BLOCK_SCOPES`` kept float32, on one-token / sentence /
# context-limit:
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
    harmonics_rms_rel=1e-3,
    forced_rms_rel=5e-3,
    forced_max_rel=5e-3,
    free_mel=0.8,
)
# float16 weights must at least halve the file; Kokoro's measures 0.50x with its block list.
FP16_MAX_SIZE_RATIO = 0.55


@dataclass(frozen=True)
class SourceBound:
    """A random harmonic source against PyTorch's draws (``parity.judge.source``): the
    log-mel distance to the draws over the distance between two draws."""

    max_ratio: float

    def accepts(self, drawn: SourceDistribution) -> bool:
        return drawn.finite and drawn.ratio <= self.max_ratio


# Measured 2026-12-05, ORT 1.32 CPU / torch 2.13, full preset seed 0, kokoro's random source
# kept (the blog post's KModelForONNX export), 8 seeded PyTorch draws on ORT's F0, on
# one-token / sentence / context-limit: ORT's source reads 1.045 / 0.996 / 1.128 (the long
# request's float32 phase sums part from PyTorch's over 60 s, as two draws' phases do).
# PyTorch's own source with a planted fault, same figure: overtone weights x1.2 2.25 / 1.81
# / 1.84, noise doubled 3.1 / 2.8 / 2.7, F0 1% sharp 2.3 / 1.8 / 1.8; weights x1.05 1.27 /
# 1.14 / 1.14 and a bias of +0.02 1.14 / 1.02 / 1.02 are within the draws' spread, which is
# the resolution a single random draw allows. Planted in the exported graph, sentence
# (tests/test_layouts.py): the noise drawn at twice its deviation 2.84, overtone weights x1.2
# 1.81.
STOCHASTIC_SOURCE = SourceBound(max_ratio=1.35)

# A deterministic source that does not match PyTorch's sample by sample (rms_rel over
# ``source_rms_rel``) is judged by its spectrum instead: log-mel distance to PyTorch's source.
# Measured 2026-12-05, the published kokoro-onnx graph (float32 phase sums, where ours sum in
# float64) against the recovered PyTorch, trained voices, one-token / sentence /
# context-limit: rms_rel 1.9e-4 / 2.4e-3 / 0.15 (its phase drifts with length), log-mel
# 0.0002 / 0.0015 / 0.034.
SOURCE_SPECTRUM_MEL = 0.05


@dataclass(frozen=True)
class VariantTolerance:
    """A variant of the trained model against its float32 source, one bound per axis of the
    verdict (``parity.judge.quality``): timing, sound with timing removed, static, loudness."""

    max_length_change: float
    max_moved_tokens: float  # share of tokens whose frame count moved
    aligned_mel: float  # mean |Δ log-mel| over the requests, timing removed
    mcd_db: float  # mean mel-cepstral distortion
    max_floor_rise_db: float
    max_hf_ratio: float
    max_loudness_db: float
    max_size_ratio: float


# The verdict's noise floor: float32 against itself with its style vector moved by this much
# (relative). Measured 2026-12-02, trained Kokoro-82M, held-out set x 5 voices, timing forced:
# aligned log-mel 0.025 (0.007..0.048), MCD 0.72 dB, floor +0.33 dB, >6 kHz x1.01, loudness
# 0.01 dB, no token moved. The same model run twice reads exactly 0 on every axis.
STYLE_NUDGE = 1e-7
# Noise-floor rises this small are not told apart when a variant is compared with the peer:
# on the held-out set single requests of float32 against itself (style moved 1e-7) move the
# floor by up to 0.3 dB, and a 40 dB SNR hiss lifts it by 26 dB (tests/test_metrics.py).
FLOOR_RESOLUTION_DB = 0.1
# For figures that are compared rather than gated (the recipe search, the noise floor).
UNGATED = VariantTolerance(*(float("inf"),) * 8)

# Measured 2026-12-02, ORT 1.32 CPU, trained Kokoro-82M against its float32 source, on the
# held-out set (8 sentences; none of them chose a tolerance, exclusion or recipe), timing
# forced to float32's durations. Gates run the sentences in 2 voices each (16 requests);
# all 5 voices (40 requests) in brackets where they differ:
#   variant        tokens moved  length      aligned (spread)       MCD dB  floor   >6k    loud
#   dynamic uint8  0.4% (0.7%)   0.6 (1.8)%  0.255 (0.170..0.375)   6.35    +0.27   x1.04  0.05
#   dyn. int8 p.c. 0.3% (0.7%)   0.6 (1.8)%  0.244 (0.171..0.359)   6.51    -0.07   x1.07  0.09
#   QDQ            1.0% (0.7%)   0.8%        0.522 (0.373..0.689)   12.3    +0.27   x1.32  0.40
#   QOperator      1.0% (0.7%)   0.8%        0.518 (0.377..0.680)   12.2    +0.29   x1.38  0.40
#   published      3.3% (3.4%)   2.4%        0.240 (0.148..0.382)   6.27    -0.06   x1.06  0.07
#   no exclusions  11.0% (9.3%)  5.5%        0.585 (0.437..0.792)   16.5    +0.10   x2.62  0.67
# Noise floor (float32, style moved 1e-7): aligned 0.025, MCD 0.72 dB, no token moved.
# Bounds sit ~1.3x above each measurement; the static bounds at a tenth of what quantizing
# conv_post does (x2.6), and loudness at 0.5 dB (a missing 1.5x iSTFT gain reads 3.5 dB).
_LENGTH, _FLOOR_DB, _LOUDNESS_DB = 0.032, 1.0, 0.5
INT8_VARIANTS: dict[str, VariantTolerance] = {
    "dynamic-uint8": VariantTolerance(
        _LENGTH, 0.02, 0.33, 8.5, _FLOOR_DB, 1.15, _LOUDNESS_DB, 0.45
    ),
    "dynamic-int8-per-channel": VariantTolerance(
        _LENGTH, 0.02, 0.32, 8.5, _FLOOR_DB, 1.15, _LOUDNESS_DB, 0.46
    ),
    "qdq": VariantTolerance(_LENGTH, 0.02, 0.68, 16.0, _FLOOR_DB, 1.8, 0.6, 0.51),
    "qoperator": VariantTolerance(_LENGTH, 0.02, 0.68, 16.0, _FLOOR_DB, 1.8, 0.6, 0.51),
    "published": VariantTolerance(_LENGTH, 0.045, 0.31, 8.2, _FLOOR_DB, 1.15, _LOUDNESS_DB, 0.30),
}

# A quantized file made elsewhere (``parity compare``, ``--parity-onnx``) is held to what the
# published int8 meets, the field's reference conversion; it is judged against PyTorch
# float32, not against a float32 ONNX of its own, with its output gain taken out first.
QUANTIZED_FILE = INT8_VARIANTS["published"]

# A shipped file through kokoro-onnx 0.6.1 against float32 through the same client, timing
# aligned by DTW: the client trims silence, so lengths differ by what it trimmed. Measured
# 2026-12-02 on the held-out sentences, one voice each: the published int8 length 5.2%,
# aligned 0.306 (0.214..0.438), MCD 7.8 dB, floor -0.29 dB, x1.04, loudness 0.11 dB; the
# CPU recipe 5.2%, 0.313 (0.221..0.502), 8.1 dB, +0.09 dB, x1.05, 0.05 dB. Its successor with
# int8-stored weights, 2026-12-03: 5.2%, 0.311 (0.218..0.458), 7.9 dB, -0.32 dB, x1.01, 0.03 dB.
# Size is the variant gates' business, not the client's.
CLIENT = VariantTolerance(
    0.07, float("inf"), 0.4, 10.5, _FLOOR_DB, 1.15, _LOUDNESS_DB, float("inf")
)


@dataclass(frozen=True)
class IntermediateTolerance:
    """Each module boundary of the intermediate walk (``parity.judge.localize``)."""

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


# A stored sensitivity sweep (fixtures/baselines/) against a new measurement of the same
# groups, in mean |log-mel| difference. Re-measuring on one machine is bit-identical (0.0:
# ORT's CPU kernels are deterministic at fixed threads); groups in the trained sweep sit
# 0.13 apart at the floor (any perturbation of the F0 path moves the harmonics that much),
# so a move of 0.05 is a change in the model, the quantizer or ONNX Runtime, not noise.
SWEEP_LOSS_DRIFT = 0.05


@dataclass(frozen=True)
class SpeedBound:
    """Real-time factor of a variant over float32's, timed interleaved in one run."""

    low: float  # a variant expected to be slow (a known trap) must stay visibly slow
    high: float

    def accepts(self, ratio: float) -> bool:
        return self.low <= ratio <= self.high


# Measured 2026-11-25 on this machine (ORT 1.32 CPU, onnxruntime-web 1.30 under Node 20),
# trained Kokoro-82M, sentence fixture, medians of 3 interleaved repeats; RTF ratio to fp32
# on cpu (2 threads) / cpu-1t / wasm (1 thread):
#   published int8 0.83 / 0.77 / 0.85      dynamic uint8 0.87 / 0.83 / 0.86
#   qdq 0.50 / 0.43 / 0.52                  qoperator 0.50 / 0.42 / 0.51
#   dynamic int8 per-channel 2.68 / 2.84 / 5.61: signed int8 weights send ConvInteger to its
#   slow path; the gate keeps that visible rather than passing it.
# A second run with the machine busy read dynamic uint8 at 0.97 on cpu (repeats spread up to
# 13%), so the dynamic variants are gated at "not more than 10% slower than fp32", the static
# ones at "clearly faster", and the trap at "clearly slower".
# Re-measured 2026-12-02 on this machine kind, now a CPU with AMX as well (fp32 RTF 0.26
# against 0.36 before): published 1.07 to 1.09, dynamic uint8 1.11 to 1.15 (two runs), QDQ
# 0.57 to 0.61, signed int8 per channel 3.5. float32 gained more than the integer kernels,
# so the dynamic variants are now gated at "not more than 30% slower than fp32".
# wasm-2t (the threaded WebAssembly build, 2 threads), measured 2026-12-03 in one run: published
# 1.17, dynamic uint8 1.18, QDQ and QOperator 0.59, signed int8 per channel 5.7: inside the
# same bounds, so one table serves every provider.
# A clean-clone CI run on 2026-12-03 read QDQ at 0.67 from medians of 3 (repeats spread
# 29-39%), so ratios now compare each model's fastest repeat. Four runs of the gate that day:
# QDQ 0.48 to 0.60, QOperator 0.51 to 0.58, published 0.81 to 0.93, dynamic uint8 0.84 to
# 0.96. The static bound is 0.7: still clearly faster, where a variant that lost its integer
# kernels reads 0.9 or more.
SPEED_VS_FP32: dict[str, SpeedBound] = {
    "published": SpeedBound(0.0, 1.3),
    "dynamic-uint8": SpeedBound(0.0, 1.3),
    "qdq": SpeedBound(0.0, 0.7),
    "qoperator": SpeedBound(0.0, 0.7),
    "dynamic-int8-per-channel": SpeedBound(1.5, float("inf")),
}


@dataclass(frozen=True)
class RecoveryBound:
    """How the recovered PyTorch model must agree with the exports it came from (issue #8)."""

    forced_rel: float  # waveform error against the float32 ONNX, harmonic input forced
    length_change: float  # audio length against the int8 export
    noise_to_voice: float  # mean log-mel to int8 / mean log-mel between voices


# Measured 2026-11-25 on the held sentences x 5 voices: durations equal on all 10, waveform
# error 5e-6 to 2.3e-5 with the generator's harmonic input forced (the bound is the fp32
# export bar, 1e-3); length within 1.1% of the int8's; log-mel to the int8 0.21 to 1.19
# against 1.68 to 3.43 between voices, a ratio of 0.26 (the dequantized float32 ONNX reads
# 0.20 on the calibration sentence). Free-running, the phase chaos of the published graph's
# float32 source and atan2 lowering leaves 0.08 to 0.15, which is why the bar is forced.
RECOVERY = RecoveryBound(forced_rel=1e-3, length_change=0.02, noise_to_voice=0.35)

# kokoro-js 1.2.1 (onnxruntime-web 1.22 WebAssembly, 1 thread) speaking the trained float32
# against ONNX Runtime 1.32 CPU running the same file, free-running, on the first 3 held-out
# sentences in one voice each, measured 2026-12-03: lengths equal, aligned log-mel 0.023
# (0.016..0.029), MCD 0.63 dB, floor -0.02 dB, >6 kHz x1.01, loudness 0.00 dB: the noise
# floor's level (float32 against itself, style moved 1e-7: 0.025, up to 0.048 on one request,
# MCD 0.72 dB). So the bounds are the floor's worst request, not a variant's: a wrong voice,
# style row or pad reads several times more.
KOKORO_JS_BACKEND = VariantTolerance(
    0.001, float("inf"), 0.05, 1.5, _FLOOR_DB, 1.1, 0.2, float("inf")
)
# A shipped file through kokoro-js against float32 through it, timing aligned by DTW, same 3
# requests, measured 2026-12-03: the published int8 length 1.0%, aligned 0.191 (0.145..0.230),
# MCD 5.1 dB, floor +0.52 dB, >6 kHz x0.94, loudness 0.08 dB; the chosen recipe (int8-stored
# weights) 0.0%, 0.208 (0.175..0.270), 5.1 dB, -0.22 dB, x0.96, 0.04 dB (the recipe before it,
# float32 weights: 0.204, 5.1 dB). kokoro-js does not trim, so length is held to the gates'
# bound; the sound bounds are kokoro-onnx's (CLIENT).
KOKORO_JS = VariantTolerance(
    _LENGTH, float("inf"), 0.4, 10.5, _FLOOR_DB, 1.15, _LOUDNESS_DB, float("inf")
)

# `parity report --compare`: figures that move less than this share between two runs are
# noise. Run-to-run timing on this machine drifts up to 29% in minima and 15% in medians
# (README, benchmark compare); quality figures are deterministic and do not move at all on
# the same inputs.
TIMING_NOISE = 0.30
QUALITY_NOISE = 0.05
