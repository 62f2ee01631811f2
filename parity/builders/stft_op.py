"""ONNX ``STFT`` ops rewritten as framing and one ``MatMul`` with the windowed DFT basis.

ONNX Runtime's CPU ``STFT`` runs on one thread and is the slower and the less exact of the
two: on kokoro-onnx's harmonic source (n_fft 20, hop 5, 228,020 samples; ORT 1.32, medians
of 9) it took 101 | 98 ms on 1 | 2 threads, the rewrite 8.8 | 5.9 ms; against a float64
``numpy.fft.rfft`` of the same frames it is 1.7e-6 rms relative off, the rewrite 7.9e-8. So:

    signal [B, N, 1] -Reshape-> [B, N] -Gather(frame starts + taps)-> [B, F, n_fft]
    -MatMul(basis [n_fft, 2 * bins])-> [B, F, 2 * bins] (-Add->) -Reshape-> [B, F, bins, 2]

with the window folded into the basis and the basis's columns in the op's (bin, real/imag)
order, F = (N - n_fft) // hop + 1 as the op has it. The basis is one of two:

- ``exact``: the DFT in float64, rounded once. The DC and Nyquist bins' imaginary parts, 0 in
  exact arithmetic, are the smallest normal float, so a phase read from them is torch's (below).
- ``onnxruntime``: ORT's own STFT as a linear map, read off by running the op (of the ORT that
  builds the file) on the n_fft unit frames. It keeps the op's residues in those imaginary
  parts, so a phase read from them is the float32 file's: what an int8 build judged against
  that file needs (docs/recipes.md). No ``Add``: the residues are in the basis.

Only real signals with constant hop, window and frame length are taken (a signal the
graph's shapes call complex, [B, N, 2], is refused); anything else is one error line naming
the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import onnx
from onnx import helper, numpy_helper

from parity.builders.dft import dft_tables
from parity.core.errors import ParityError
from parity.core.graph import prune_dead

__all__ = ["STFT_BASES", "StftBasis", "rewrite_stft_ops"]

StftBasis = Literal["exact", "onnxruntime"]
STFT_BASES: tuple[StftBasis, ...] = ("exact", "onnxruntime")


def rewrite_stft_ops(model: onnx.ModelProto, basis: StftBasis = "exact") -> list[str]:
    """Rewrite every top-level ``STFT`` node of ``model`` in place, on ``basis``; returns their
    names."""
    if basis not in STFT_BASES:
        raise ParityError(f"stft rewrite: unknown basis {basis!r}; use {', '.join(STFT_BASES)}")
    graph = model.graph
    wanted = {name for node in graph.node if node.op_type == "STFT" for name in node.input[1:]}
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name in wanted}
    shapes = {
        value.name: [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]
        for value in (*graph.input, *graph.value_info)
    }
    nodes: list[onnx.NodeProto] = []
    rewritten: list[str] = []
    for node in graph.node:
        if node.op_type != "STFT":
            nodes.append(node)
            continue
        if shapes.get(node.input[0], [])[2:] == [2]:
            raise ParityError(
                f"stft rewrite: {node.name} takes a complex signal; only real ones rewrite"
            )
        built, tensors = _framed_matmul(node, constants, basis)
        nodes.extend(built)
        graph.initializer.extend(tensors)
        rewritten.append(node.name)
    del graph.node[:]
    graph.node.extend(nodes)
    prune_dead(graph)  # the ops' window and length constants, where nothing else reads them
    return rewritten


def _constant(node: onnx.NodeProto, index: int, constants: Mapping[str, np.ndarray]) -> np.ndarray:
    name = node.input[index] if len(node.input) > index else ""
    if name and name not in constants:
        what = ("signal", "frame_step", "window", "frame_length")[index]
        raise ParityError(
            f"stft rewrite: {node.name} has a computed {what} ({name}); fold constants first"
        )
    return constants[name] if name else np.array([])


def _framed_matmul(
    node: onnx.NodeProto, constants: Mapping[str, np.ndarray], basis_kind: StftBasis
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    hop = int(_constant(node, 1, constants))
    window = _constant(node, 2, constants).astype(np.float64)
    length = _constant(node, 3, constants)
    n_fft = int(length) if length.size else int(window.size)
    if not window.size:
        window = np.ones(n_fft)
    if window.size != n_fft:
        raise ParityError(
            f"stft rewrite: {node.name} has a window of {window.size} for frames of {n_fft}"
        )
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    onesided = bool(attrs.get("onesided", 1))
    # ORT's basis carries the op's own residues; the exact one adds its DC and Nyquist offsets
    if basis_kind == "onnxruntime":
        basis, offsets = _onnxruntime_basis(n_fft, window, onesided), None
    else:
        basis, offsets = _exact_basis(n_fft, window, onesided)
    bins = basis.shape[1] // 2

    def tensor(suffix: str) -> str:
        return f"{node.name}/matmul/{suffix}"

    arrays: dict[str, np.ndarray] = {
        "flat": np.array([0, -1], np.int64),
        "n_fft": np.array(n_fft, np.int64),
        "hop": np.array(hop, np.int64),
        "one": np.array(1, np.int64),
        "zero": np.array(0, np.int64),
        "axis1": np.array([1], np.int64),
        "taps": np.arange(n_fft, dtype=np.int64)[None],
        "basis": basis,
        **({} if offsets is None else {"zero_imag": offsets}),
        "out": np.array([0, -1, bins, 2], np.int64),
    }
    tensors = [numpy_helper.from_array(array, tensor(name)) for name, array in arrays.items()]
    signal = tensor("signal")
    nodes = [
        # [B, N, 1] (or [B, N], which ORT takes too) -> [B, N]
        helper.make_node("Reshape", [node.input[0], tensor("flat")], [signal]),
        helper.make_node("Shape", [signal], [tensor("length")], start=1, end=2),
        helper.make_node("Squeeze", [tensor("length")], [tensor("n")]),
        helper.make_node("Sub", [tensor("n"), tensor("n_fft")], [tensor("room")]),
        helper.make_node("Div", [tensor("room"), tensor("hop")], [tensor("last")]),
        helper.make_node("Add", [tensor("last"), tensor("one")], [tensor("frames")]),
        helper.make_node("Range", [tensor("zero"), tensor("frames"), tensor("one")], [tensor("f")]),
        helper.make_node("Mul", [tensor("f"), tensor("hop")], [tensor("starts")]),
        helper.make_node("Unsqueeze", [tensor("starts"), tensor("axis1")], [tensor("column")]),
        helper.make_node("Add", [tensor("column"), tensor("taps")], [tensor("index")]),
        helper.make_node("Gather", [signal, tensor("index")], [tensor("framed")], axis=1),
        helper.make_node("MatMul", [tensor("framed"), tensor("basis")], [tensor("product")]),
    ]
    spectrum = tensor("product")
    if offsets is not None:
        spectrum = tensor("spectrum")
        nodes.append(helper.make_node("Add", [tensor("product"), tensor("zero_imag")], [spectrum]))
    nodes.append(helper.make_node("Reshape", [spectrum, tensor("out")], [node.output[0]]))
    for index, built in enumerate(nodes):
        built.name = f"{node.name}/matmul/{index}_{built.op_type}"
    return nodes, tensors


def _exact_basis(n_fft: int, window: np.ndarray, onesided: bool) -> tuple[np.ndarray, np.ndarray]:
    """The windowed DFT basis [n_fft, 2 * bins] in float64, rounded once, and what to add to
    its product so the DC and Nyquist bins' phases read as torch's."""
    cos, sin = dft_tables(n_fft, onesided=onesided)  # [bins, n_fft]
    bins = cos.shape[0]
    basis = np.stack([cos.T, -sin.T], axis=2).reshape(n_fft, 2 * bins) * window[:, None]
    # The DC and Nyquist bins' imaginary parts are exactly 0 here (as in torch.stft), where
    # ORT's op leaves float residues of either sign (up to 7e-7). A phase read from them flips
    # by 2 pi with that sign: torch.atan2(+0, x < 0) is +pi, but the TorchScript exporter's
    # atan2 (Atan, then Greater(imag, 0) to choose +-pi) gives -pi for 0, and brightened the
    # trained Kokoro's noise branch (>6 kHz share 0.020 -> 0.091 on held-yes). The smallest
    # normal float instead of 0 makes every atan2 written so give torch's +pi.
    zero_imag = np.zeros(2 * bins, np.float32)
    zero_imag[1::2][(np.arange(bins) * 2) % n_fft == 0] = np.finfo(np.float32).tiny
    return basis.astype(np.float32), zero_imag


def _onnxruntime_basis(n_fft: int, window: np.ndarray, onesided: bool) -> np.ndarray:
    """ORT's ``STFT`` as the matrix [n_fft, 2 * bins] it applies to a frame: the op run once
    on the n_fft unit frames. ORT 1.32 transforms a length that is not a power of two with
    residues that are linear in the frame (the DC bin's imaginary part is about -4.5e-7 times
    its real part), and this keeps them: on the trained Kokoro's harmonic source (held-yes,
    held-storm) the rewrite reads 1.3e-7 rms relative off ORT's op, against 1.0e-6 for the exact
    basis, and the sign of the DC and Nyquist imaginary parts agrees on 99.7% of the frames,
    against 0.3% and 40% (2026-12-07)."""
    import onnxruntime as ort

    inputs = [
        numpy_helper.from_array(np.array(n_fft, np.int64), "step"),
        numpy_helper.from_array(window.astype(np.float32), "window"),
        numpy_helper.from_array(np.array(n_fft, np.int64), "length"),
    ]
    graph = helper.make_graph(
        [helper.make_node("STFT", ["x", "step", "window", "length"], ["y"], onesided=onesided)],
        "unit-frames",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [n_fft, n_fft, 1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        inputs,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    frames = np.eye(n_fft, dtype=np.float32)[:, :, None]  # batch j holds the unit frame e_j
    spectra = np.asarray(session.run(None, {"x": frames})[0])  # [n_fft, 1, bins, 2]
    return spectra.reshape(n_fft, -1).astype(np.float32)
