"""Float16 / bfloat16 conversion that follows subgraphs and casts only at precision boundaries.

Parts, lowest first: options, schema, kernels, precision, constants, casts, storage, convert; audit.
"""

from __future__ import annotations

from parity.builders.fp16.audit import Fp16Audit, audit, audit_files
from parity.builders.fp16.convert import (
    Fp16Build,
    check,
    convert_cached,
    convert_file,
    convert_float,
    kokoro_options,
)
from parity.builders.fp16.kernels import unsupported_on_cpu
from parity.builders.fp16.settings import (
    KOKORO_BLOCK_NODES,
    KOKORO_BLOCK_SCOPES,
    KOKORO_FP16,
    KOKORO_FP16_WEBGPU,
    KOKORO_ONNX_FP16,
    KOKORO_ONNX_FP16_WEBGPU,
    WEBGPU_ACCUMULATING_OPS,
    WEBGPU_TAIL_NODES,
    WEBGPU_TAIL_SCOPES,
    Fp16Options,
    Fp16Report,
    LowType,
    report_json,
    stock_options,
)

__all__ = [
    "KOKORO_BLOCK_NODES",
    "KOKORO_BLOCK_SCOPES",
    "KOKORO_FP16",
    "KOKORO_FP16_WEBGPU",
    "KOKORO_ONNX_FP16",
    "KOKORO_ONNX_FP16_WEBGPU",
    "WEBGPU_ACCUMULATING_OPS",
    "WEBGPU_TAIL_NODES",
    "WEBGPU_TAIL_SCOPES",
    "Fp16Audit",
    "Fp16Build",
    "Fp16Options",
    "Fp16Report",
    "LowType",
    "audit",
    "audit_files",
    "check",
    "convert_cached",
    "convert_file",
    "convert_float",
    "kokoro_options",
    "report_json",
    "stock_options",
    "unsupported_on_cpu",
]
