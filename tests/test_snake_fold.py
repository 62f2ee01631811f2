"""AdaIN + Snake chains rewritten in fewer passes (parity.builders.snake) compute the same
values, whether a float conv absorbs the ``1 / alpha`` or a ``Mul`` keeps it, and a chain
that is not Snake is left alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.quantize import QuantRecipe
from parity.builders.snake import fold_snakes
from parity.core.errors import ParityError
from parity.judge.tolerances import SNAKE_FOLD_RMS_REL

CHANNELS = 16


def _chain(reader: str, reciprocal_off: float = 1.0) -> onnx.ModelProto:
    """A fused AdaIN (unit-affine instance norm, then style scale and shift given at run time),
    Snake, and ``reader``: a float Conv or a Relu."""
    rng = np.random.default_rng(0)
    # Kokoro's trained alphas reach -0.03 and 2.3: a negative one and one near zero are in.
    alpha = rng.uniform(0.2, 2.3, CHANNELS).astype(np.float32)
    alpha[:2] = (-0.026, 0.006)
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        helper.make_node("Shape", ["x"], ["c"], start=1, end=2),
        helper.make_node("ConstantOfShape", ["c"], ["ones"], value=one),
        helper.make_node("ConstantOfShape", ["c"], ["zeros"], value=zero),
        helper.make_node("InstanceNormalization", ["x", "ones", "zeros"], ["xn"], epsilon=1e-5),
        helper.make_node("Mul", ["gain", "xn"], ["scaled"], name="/adain/Mul_3"),
        helper.make_node("Add", ["scaled", "shift"], ["y"], name="/adain/Add_3"),
        helper.make_node("Mul", ["alpha", "y"], ["ay"], name="/Mul"),
        helper.make_node("Sin", ["ay"], ["s"], name="/Sin"),
        helper.make_node("Pow", ["s", "two"], ["s2"], name="/Pow"),
        helper.make_node("Mul", ["inverse", "s2"], ["q"], name="/Mul_1"),
        helper.make_node("Add", ["y", "q"], ["snake"], name="/Add"),
    ]
    constants = [
        numpy_helper.from_array(alpha.reshape(1, CHANNELS, 1), "alpha"),
        numpy_helper.from_array((reciprocal_off / alpha).reshape(1, CHANNELS, 1), "inverse"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    if reader == "conv":
        weight = rng.normal(0, 0.2, (8, CHANNELS, 3)).astype(np.float32)
        constants += [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b"),
        ]
        nodes.append(
            helper.make_node(
                "Conv", ["snake", "w", "b"], ["out"], name="/conv", pads=[2, 2], dilations=[2]
            )
        )
        channels_out = 8
    else:
        nodes.append(helper.make_node("Relu", ["snake"], ["out"], name="/relu"))
        channels_out = CHANNELS
    style = [1, CHANNELS, 1]
    graph = helper.make_graph(
        nodes,
        "adain_snake",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, "T"]),
            helper.make_tensor_value_info("gain", TensorProto.FLOAT, style),
            helper.make_tensor_value_info("shift", TensorProto.FLOAT, style),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, channels_out, "T"])],
        constants,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _run(model: onnx.ModelProto) -> np.ndarray:
    rng = np.random.default_rng(1)
    feeds = {
        "x": rng.normal(0.5, 3, (1, CHANNELS, 400)).astype(np.float32),
        "gain": rng.normal(1, 0.3, (1, CHANNELS, 1)).astype(np.float32),
        "shift": rng.normal(0, 0.5, (1, CHANNELS, 1)).astype(np.float32),
    }
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


def _rms_rel(value: np.ndarray, reference: np.ndarray) -> float:
    return float(np.sqrt(np.mean((value - reference) ** 2) / np.mean(reference**2)))


@pytest.mark.parametrize(
    ("reader", "into_weights", "kept_muls"),
    [("conv", 1, 0), ("relu", 0, 1)],
    ids=["float-conv-absorbs-the-division", "other-reader-keeps-a-mul"],
)
def test_the_folded_chain_computes_the_same_values_in_fewer_passes(
    reader: str, into_weights: int, kept_muls: int
) -> None:
    model = _chain(reader)
    reference = _run(model)
    folds = fold_snakes(model)
    onnx.checker.check_model(model)
    assert (folds.chains, folds.into_conv_weights) == (1, into_weights)
    # Passes over [1, C, T]: the norm, Sin, the square, the sum, and the Mul where no conv
    # takes 1 / alpha; the chain had eight (norm, Mul, Add, Mul, Sin, Pow, Mul, Add).
    wide = [n.op_type for n in model.graph.node if n.op_type not in ("Reshape", "Conv", "Relu")]
    style_muls = 2  # alpha into the style's scale and shift: [1, C, 1] each
    assert sorted(wide) == sorted(
        ["InstanceNormalization", "Sin", "Mul", "Add", *["Mul"] * (style_muls + kept_muls)]
        + (["Mul"] if into_weights else [])  # 1 / alpha into the conv weight, [O, C, K]
    )
    assert _rms_rel(_run(model), reference) < SNAKE_FOLD_RMS_REL


def test_a_chain_whose_division_is_not_by_alpha_is_left_alone() -> None:
    model = _chain("conv", reciprocal_off=1.5)
    before = [node.op_type for node in model.graph.node]
    assert fold_snakes(model).chains == 0
    assert [node.op_type for node in model.graph.node] == before


def test_a_recipe_cannot_fold_snakes_into_norms_it_does_not_fuse() -> None:
    with pytest.raises(ParityError, match="set fuse_instance_norms"):
        QuantRecipe(fold_snakes=True)


def test_a_snake_the_graph_also_returns_keeps_its_output() -> None:
    model = _chain("conv")
    model.graph.output.append(
        helper.make_tensor_value_info("snake", TensorProto.FLOAT, [1, CHANNELS, "T"])
    )
    reference = _run(model)
    folds = fold_snakes(model)
    onnx.checker.check_model(model)
    assert (folds.chains, folds.into_conv_weights) == (1, 0)
    assert [o.name for o in model.graph.output] == ["out", "snake"]
    assert _rms_rel(_run(model), reference) < SNAKE_FOLD_RMS_REL
