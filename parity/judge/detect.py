"""What a Kokoro graph made elsewhere is, read from the graph alone: its interface, its
precision (which verdict judges it), and the STFT and harmonic source it was exported with
(which PyTorch model it is compared against). Each finding carries the reason for it, so
the output can say why a verdict was chosen."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from parity.core.graph import load_model, node_subgraphs
from parity.core.interface import KokoroInterface, find_interface
from parity.core.spec import KokoroSpec

__all__ = ["QUANTIZED_OPS", "GraphFacts", "read_graph", "spec_for_graph"]

# Ops that carry integer arithmetic or integer-stored weights: ONNX Runtime's quantizer
# (QDQ, QOperator, dynamic), its contrib fusions, and MatMulNBits.
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QLinearMul",
        "QGemm",
        "QAttention",
        "DynamicQuantizeLSTM",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "MatMulNBits",
    }
)
_RANDOM_OPS = frozenset({"RandomUniformLike", "RandomNormalLike", "RandomUniform", "RandomNormal"})
_SOURCE_SCOPE = "/m_source/"
_HALF = {TensorProto.FLOAT16, TensorProto.BFLOAT16}
_FULL = {TensorProto.FLOAT, TensorProto.DOUBLE}


@dataclass(frozen=True)
class GraphFacts:
    """A graph's interface and kinds, each with the reason it was read so."""

    path: Path
    interface: KokoroInterface
    precision: str  # "fp32", "fp16" or "quantized"
    precision_reason: str
    stft: str  # "exact", "kokoro" or "complex": the PyTorch STFT to compare against
    stft_reason: str
    source: str  # "deterministic" or "stochastic"
    source_reason: str
    size_bytes: int

    def describe(self) -> str:
        return (
            f"{self.path.name}: {self.interface.describe()}\n"
            f"  precision {self.precision} ({self.precision_reason})\n"
            f"  STFT {self.stft} ({self.stft_reason}); source {self.source} "
            f"({self.source_reason})"
        )


def _nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    found = []
    for node in graph.node:
        found.append(node)
        for body in node_subgraphs(node):
            found.extend(_nodes(body))
    return found


def _tensor_bytes(tensor: onnx.TensorProto) -> int:
    itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    return int(np.prod(tensor.dims, dtype=np.int64)) * itemsize


def _precision(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> tuple[str, str]:
    quantized = Counter(node.op_type for node in nodes if node.op_type in QUANTIZED_OPS)
    if quantized:
        listed = ", ".join(f"{count} {op}" for op, count in quantized.most_common(3))
        return "quantized", f"integer ops: {listed}"
    weights: Counter[str] = Counter()
    for tensor in model.graph.initializer:
        if tensor.data_type in _HALF | _FULL:
            weights["half" if tensor.data_type in _HALF else "full"] += _tensor_bytes(tensor)
    total = weights["half"] + weights["full"]
    share = weights["half"] / total if total else 0.0
    if share >= 0.5:
        return "fp16", f"{share:.0%} of float weight bytes are 16-bit"
    return "fp32", f"{1 - share:.0%} of float weight bytes are 32-bit, no integer ops"


def _stft(prefixes: set[str], nodes: list[onnx.NodeProto]) -> tuple[str, str]:
    if any(prefix.endswith("/generator/analysis/") for prefix in prefixes):
        return "exact", "the generator has parity's STFT analysis module"
    if any(node.op_type == "STFT" for node in nodes):
        return "complex", "the graph has an ONNX STFT op (torch.stft)"
    return "kokoro", "no STFT module of parity's nor an STFT op: a convolutional STFT"


def _source(nodes: list[onnx.NodeProto]) -> tuple[str, str]:
    drawn = [n.op_type for n in nodes if n.op_type in _RANDOM_OPS and _SOURCE_SCOPE in n.name]
    if drawn:
        return "stochastic", f"its harmonic source draws random numbers ({', '.join(drawn)})"
    return "deterministic", "its harmonic source draws no random numbers"


def read_graph(path: Path) -> GraphFacts:
    """Read ``path``'s facts (one clear line for a file that is not a Kokoro graph)."""
    model = load_model(path, external_data=False)
    interface = find_interface(model, str(path))
    nodes = _nodes(model.graph)
    prefixes = {
        "/" + "/".join(parts[:depth]) + "/"
        for node in nodes
        if node.name.startswith("/")
        for parts in [node.name.split("/")[1:-1]]
        for depth in range(1, len(parts) + 1)
    }
    precision, precision_reason = _precision(model, nodes)
    stft, stft_reason = _stft(prefixes, nodes)
    source, source_reason = _source(nodes)
    return GraphFacts(
        Path(path),
        interface,
        precision,
        precision_reason,
        stft,
        stft_reason,
        source,
        source_reason,
        Path(path).stat().st_size,
    )


def spec_for_graph(spec: KokoroSpec, facts: GraphFacts, detect: frozenset[str]) -> KokoroSpec:
    """``spec`` with the kinds named in ``detect`` ("stft", "source") taken from the graph."""
    changes: dict[str, str] = {}
    if "stft" in detect:
        changes["stft"] = facts.stft
    if "source" in detect:
        changes["source"] = facts.source
    return replace(spec, **changes)  # type: ignore[arg-type]
