"""Convolutions as an int8 GEMM with float outputs (parity.builders.conv_gemm): the layout is
exact in its float form for every geometry Kokoro's generator uses, and the integer forms stay
within 8-bit rounding of the float ``Conv``."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.conv_gemm import rewrite_convs_as_gemm
from parity.core.errors import ParityError
from parity.judge.tolerances import CONV_GEMM_FLOAT_RMS_REL, CONV_GEMM_INT8_RMS_REL

CHANNELS_IN, CHANNELS_OUT, STEPS = 64, 48, 700
# Every (kernel, dilation) pair of Kokoro's generator resblocks, padded to keep the length.
GENERATOR_GEOMETRY = [(k, d) for k in (3, 7, 11) for d in (1, 3, 5)]


def _conv_model(
    kernel: int, dilation: int, pads: tuple[int, int], **attrs: object
) -> onnx.ModelProto:
    rng = np.random.default_rng(kernel * 10 + dilation)
    weight = rng.normal(0, 0.1, (CHANNELS_OUT, CHANNELS_IN, kernel)).astype(np.float32)
    bias = rng.normal(0, 1, CHANNELS_OUT).astype(np.float32)
    conv = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], name="/block/conv/Conv", kernel_shape=[kernel],
        dilations=[dilation], pads=list(pads), **attrs,
    )  # fmt: skip
    graph = helper.make_graph(
        [conv],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS_IN, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CHANNELS_OUT, "T2"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def _rms_rel(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.sqrt(np.mean((ours - reference) ** 2) / np.mean(reference**2)))


def _rewritten(model: onnx.ModelProto, form: str, **kwargs: object) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    assert rewrite_convs_as_gemm(copy, ["/block/"], form, **kwargs) == ["/block/conv/Conv"]  # type: ignore[arg-type]
    onnx.checker.check_model(copy)
    assert not any(node.op_type == "Conv" for node in copy.graph.node)
    return copy


@pytest.mark.parametrize(
    ("kernel", "dilation"), GENERATOR_GEOMETRY, ids=[f"k{k}-d{d}" for k, d in GENERATOR_GEOMETRY]
)
def test_float_form_is_the_conv_to_float32_rounding(kernel: int, dilation: int) -> None:
    model = _conv_model(kernel, dilation, (dilation * (kernel - 1) // 2,) * 2)
    x = np.random.default_rng(1).normal(0, 1, (1, CHANNELS_IN, STEPS)).astype(np.float32)
    reference = _run(model, x)
    ours = _run(_rewritten(model, "float"), x)
    assert ours.shape == reference.shape
    assert _rms_rel(ours, reference) <= CONV_GEMM_FLOAT_RMS_REL


@pytest.mark.parametrize(
    ("pads", "stride"),
    [((0, 0), 1), ((4, 1), 1), ((1, 1), 2), ((0, 0), 6)],
    ids=["no-padding", "uneven-padding", "stride-2", "stride-6"],
)
def test_float_form_keeps_any_padding_and_stride(pads: tuple[int, int], stride: int) -> None:
    model = _conv_model(5, 2, pads, strides=[stride])
    x = np.random.default_rng(2).normal(0, 1, (1, CHANNELS_IN, 300)).astype(np.float32)
    reference = _run(model, x)
    ours = _run(_rewritten(model, "float"), x)
    assert ours.shape == reference.shape
    assert _rms_rel(ours, reference) <= CONV_GEMM_FLOAT_RMS_REL


@pytest.mark.parametrize("form", ["dynamic", "static"])
def test_int8_forms_stay_within_8_bit_rounding(form: str) -> None:
    model = _conv_model(11, 5, (25, 25))
    # Off-centre input with a few channels wider than the rest, as a Snake output is.
    rng = np.random.default_rng(3)
    x = rng.normal(0.3, 1, (1, CHANNELS_IN, STEPS)) * rng.uniform(0.5, 2, (1, CHANNELS_IN, 1))
    x = x.astype(np.float32)
    ranges = {"x": (float(x.min()), float(x.max()))} if form == "static" else None
    reference = _run(model, x)
    error = _rms_rel(_run(_rewritten(model, form, ranges=ranges), x), reference)
    assert 0 < error <= CONV_GEMM_INT8_RMS_REL
    integer = _rewritten(model, form, ranges=ranges)
    assert [n.op_type for n in integer.graph.node].count("MatMulIntegerToFloat") == 1


@pytest.mark.parametrize(
    ("attrs", "what"),
    [({"group": 2}, "groups")],
    ids=["grouped"],
)
def test_a_conv_it_cannot_take_is_one_error_line(attrs: dict[str, object], what: str) -> None:
    model = _conv_model(3, 1, (1, 1), **attrs)
    if "group" in attrs:
        weight = numpy_helper.to_array(model.graph.initializer[0])[:, : CHANNELS_IN // 2]
        model.graph.initializer[0].CopyFrom(numpy_helper.from_array(weight, "w"))
    with pytest.raises(ParityError, match=f"/block/conv/Conv has {what}"):
        rewrite_convs_as_gemm(model, ["/block/"])


def test_static_scales_without_a_range_are_refused() -> None:
    with pytest.raises(ParityError, match="no calibrated range for x"):
        rewrite_convs_as_gemm(_conv_model(3, 1, (1, 1)), ["/block/"], "static", {})


@pytest.mark.parametrize("form", ["dynamic", "static"])
def test_int8_forms_quantize_before_the_transpose(form: str) -> None:
    # Per-tensor scales make the order free; the uint8 transpose moves a quarter of the bytes
    # (docs/recipes.md: 0.43 of the float conv's time against 0.46 with a float transpose).
    ranges = {"x": (-3.0, 3.0)} if form == "static" else None
    graph = _rewritten(_conv_model(7, 3, (9, 9)), form, ranges=ranges).graph
    quantize = next(n for n in graph.node if "Quantize" in n.op_type)
    to_channels_last = next(n for n in graph.node if n.op_type == "Transpose")
    assert quantize.input[0] == "x"
    assert to_channels_last.input[0] == quantize.output[0]
