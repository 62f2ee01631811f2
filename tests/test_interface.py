"""A Kokoro graph's roles found whatever it names them, and one line for a graph that is not
Kokoro or lacks a role (``parity.core.interface``); its precision and kinds read from the
graph (``parity.judge.detect``); module paths placed under any wrapper prefix
(``parity.core.scopes``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.core.errors import ParityError
from parity.core.interface import find_interface
from parity.core.scopes import locate_module, map_scopes
from parity.judge.detect import read_graph

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def _graph(
    inputs: list[tuple[str, int, list]],
    outputs: list[tuple[str, int, list]],
    nodes: list[onnx.NodeProto] = (),
    initializers: list[onnx.TensorProto] = (),
) -> onnx.ModelProto:
    """A graph with these inputs and outputs, each output computed from the first input."""
    source = inputs[0][0]
    made = list(nodes) or [
        helper.make_node("Cast", [source], [name], to=kind, name=f"/out/{name}")
        for name, kind, _ in outputs
    ]
    graph = helper.make_graph(
        made,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


# The four layouts the harness meets, as their graphs name their inputs and outputs.
LAYOUTS = {
    "ours": (
        [("input_ids", INT64, [1, "L"]), ("style", FLOAT, [1, 256]), ("speed", FLOAT, [1])],
        [("waveform", FLOAT, ["n"]), ("durations", INT64, [1, "L"])],
        "durations",
    ),
    "blog-KModelForONNX": (
        [("input_ids", INT64, [1, "L"]), ("style", FLOAT, [1, 256]), ("speed", FLOAT, [1])],
        [("waveform", FLOAT, ["n"]), ("onnx::Shape_3318", INT64, ["d"])],
        "onnx::Shape_3318",
    ),
    "kokoro-onnx": (
        [("tokens", INT64, [1, "L"]), ("style", FLOAT, [1, 256]), ("speed", FLOAT, [1])],
        [("audio", FLOAT, ["n"])],
        None,
    ),
    "kokoro-js": (
        [("input_ids", INT64, [1, "L"]), ("style", FLOAT, [1, 256]), ("speed", FLOAT, [1])],
        [("waveform", FLOAT, ["n"])],
        None,
    ),
    "renamed-all": (
        [("x", INT64, [1, "L"]), ("v", FLOAT, [1, 256]), ("rate", FLOAT, [1])],
        [("y", FLOAT, [1, "n"]), ("d", INT64, ["L"])],
        "d",
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_has_its_roles_found(layout: str) -> None:
    inputs, outputs, durations = LAYOUTS[layout]
    found = find_interface(_graph(inputs, outputs), layout)
    assert (found.ids, found.style, found.speed) == tuple(name for name, _, _ in inputs)
    assert found.waveform == outputs[0][0]
    assert found.durations == durations
    fed = found.feed(np.zeros((1, 5), np.int64), np.zeros((1, 256), np.float32), 1.0)
    assert set(fed) == {name for name, _, _ in inputs}
    assert fed[found.speed].shape == (1,)


def test_roles_found_by_dtype_and_shape_are_named_in_the_description() -> None:
    inputs, outputs, _ = LAYOUTS["renamed-all"]
    found = find_interface(_graph(inputs, outputs))
    assert "by dtype and shape: ids=x, style=v, speed=rate, waveform=y, durations=d" in (
        found.describe()
    )


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        pytest.param(
            [("image", FLOAT, [1, 3, 224, 224])],
            [("logits", FLOAT, [1, 1000])],
            "not a Kokoro graph: expected inputs ids (int64 [1, L]), style (float [1, 256])",
            id="an-image-classifier",
        ),
        pytest.param(
            [("input_ids", INT64, [1, "L"]), ("style", FLOAT, [1, 256])],
            [("waveform", FLOAT, ["n"])],
            "a Kokoro graph needs speed and none fits; expected inputs ids (int64 [1, L]), style "
            "(float [1, 256]), speed (float [1]) and outputs waveform (float) [, durations "
            "(int64)]; found inputs input_ids (int64 [1, 'L']), style (float32 [1, 256])",
            id="missing-speed",
        ),
        pytest.param(
            [
                ("input_ids", INT64, [1, "L"]),
                ("style", FLOAT, [1, 256]),
                ("speed", FLOAT, [1]),
                ("temperature", FLOAT, [1, 4]),
            ],
            [("waveform", FLOAT, ["n"])],
            "extra input(s) temperature (float32 [1, 4]): Kokoro takes only ids, style and speed",
            id="extra-input",
        ),
    ],
)
def test_a_graph_that_does_not_fit_gets_one_line(inputs, outputs, message) -> None:
    with pytest.raises(ParityError) as raised:
        find_interface(_graph(inputs, outputs), "model.onnx")
    text = str(raised.value)
    assert text.startswith("model.onnx: ")
    assert message in text
    assert "\n" not in text


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _kokoro_like(
    nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto]
) -> onnx.ModelProto:
    inputs, outputs, _ = LAYOUTS["ours"]
    return _graph(inputs, outputs, nodes, initializers)


def _weights(dtype: type) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones((64, 64), dtype), "w")


def test_precision_is_read_from_weights_and_ops(tmp_path: Path) -> None:
    wave = [helper.make_node("Cast", ["input_ids"], ["waveform"], to=FLOAT)]
    durations = [helper.make_node("Identity", ["input_ids"], ["durations"])]
    float32 = _kokoro_like([*wave, *durations], [_weights(np.float32)])
    float16 = _kokoro_like([*wave, *durations], [_weights(np.float16)])
    quantized = _kokoro_like(
        [
            *wave,
            *durations,
            helper.make_node("DynamicQuantizeLinear", ["style"], ["q", "s", "z"]),
        ],
        [_weights(np.float32)],
    )
    facts = {
        name: read_graph(_save(model, tmp_path / f"{name}.onnx"))
        for name, model in {"f32": float32, "f16": float16, "int8": quantized}.items()
    }
    assert facts["f32"].precision == "fp32"
    assert facts["f16"].precision == "fp16"
    assert facts["f16"].precision_reason == "100% of float weight bytes are 16-bit"
    assert facts["int8"].precision == "quantized"
    assert "1 DynamicQuantizeLinear" in facts["int8"].precision_reason


def test_a_random_source_and_the_stft_are_read_from_the_graph(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["waveform"], to=FLOAT),
        helper.make_node("Identity", ["input_ids"], ["durations"]),
        helper.make_node(
            "RandomNormalLike", ["style"], ["noise"], name="/decoder/generator/m_source/l_sin_gen/R"
        ),
        helper.make_node("Identity", ["style"], ["a"], name="/decoder/generator/analysis/Conv"),
    ]
    facts = read_graph(_save(_kokoro_like(nodes, []), tmp_path / "k.onnx"))
    assert (facts.source, facts.stft) == ("stochastic", "exact")
    assert "RandomNormalLike" in facts.source_reason


# Module scopes as the exporter derives them (``module_scopes``), against the prefixes of the
# published kokoro-onnx graph, whose wrapper calls ALBERT and the predictor from /encoder/ and
# the decoder from /decoder/ (so its generator is /decoder/decoder/generator/).
SCOPES = {
    "bert": "/bert/",
    "bert.embeddings": "/bert/embeddings/",
    "predictor.text_encoder": "/text_encoder/",
    "predictor.lstm": "/lstm/",
    "predictor.F0.0": "/F0.0/",
    "text_encoder": "/text_encoder/",
    "decoder": "/decoder/",
    "decoder.generator": "/decoder/generator/",
    "decoder.generator.m_source": "/decoder/generator/m_source/",
    "decoder.generator.stft": "/decoder/generator/stft/",
}
PUBLISHED = {
    "/encoder/",
    "/encoder/bert/",
    "/encoder/bert/embeddings/",
    "/encoder/predictor/",
    "/encoder/predictor/text_encoder/",
    "/encoder/predictor/lstm/",
    "/encoder/F0.0/",
    "/encoder/text_encoder/",
    "/decoder/",
    "/decoder/decoder/",
    "/decoder/decoder/generator/",
    "/decoder/decoder/generator/m_source/",
    "/decoder/decoder/generator/istft/",
}


def test_module_paths_are_placed_under_the_wrappers_the_graph_carries() -> None:
    mapped = map_scopes(SCOPES, PUBLISHED)
    assert mapped.prefixes["bert"] == "/encoder/bert/"
    assert mapped.prefixes["predictor.F0.0"] == "/encoder/F0.0/"
    # The path that names the module whole wins over the call-stack scope both share.
    assert mapped.prefixes["predictor.text_encoder"] == "/encoder/predictor/text_encoder/"
    assert mapped.prefixes["text_encoder"] == "/encoder/text_encoder/"
    assert mapped.prefixes["decoder.generator.m_source"] == "/decoder/decoder/generator/m_source/"
    assert mapped.wrappers["bert"] == "/encoder/"
    assert mapped.unmatched == ("decoder.generator.stft",)


def test_an_override_places_what_names_cannot() -> None:
    overrides = {"decoder.generator.stft": "/decoder/decoder/generator/istft"}
    mapped = map_scopes(SCOPES, PUBLISHED, overrides)
    assert mapped.prefixes["decoder.generator.stft"] == "/decoder/decoder/generator/istft/"
    assert mapped.overridden == ("decoder.generator.stft",)
    assert mapped.unmatched == ()
    unknown = re.escape("'decoder.nowhere' is not a module the model called")
    with pytest.raises(ParityError, match=unknown):
        map_scopes(SCOPES, PUBLISHED, {"decoder.nowhere": "/x/"})


def test_the_generator_is_found_without_a_pytorch_pass() -> None:
    assert locate_module("decoder.generator", PUBLISHED) == "/decoder/decoder/generator/"
    assert locate_module("decoder.generator", {"/decoder/generator/"}) == "/decoder/generator/"
    with pytest.raises(ParityError, match=re.escape("--scope decoder.generator=PREFIX")):
        locate_module("decoder.generator", {"/gen/"})


def test_a_check_that_cannot_be_made_is_said_not_passed_in_silence() -> None:
    """A graph with neither a durations output nor a duration chain: the staged check says
    the durations were not compared, in the verdict's first line and in the summary."""
    from parity.judge.checks import StagedParity
    from parity.judge.forcing import ForcingPlan
    from parity.judge.tolerances import FP32

    inputs, outputs, _ = LAYOUTS["kokoro-js"]
    plan = ForcingPlan(find_interface(_graph(inputs, outputs)), "/g/", ("f",), "s", None)
    note = plan.durations_note()
    assert note is not None
    assert "not compared" in note
    result = StagedParity("sentence", 1.0, None, (), None, None, None, FP32, (), notes=(note,))
    assert result.report().splitlines()[0] == (
        "staged parity of 'sentence' against PyTorch float32: PASS (see NOT MADE)"
    )
    assert "  NOT MADE durations: the graph outputs none and has no Round" in result.report()
    assert "NOT MADE: durations" in result.summary()
    read_from_chain = ForcingPlan(plan.interface, "/g/", ("f",), "s", "/Cast_output_0")
    assert "read from its duration chain (/Cast_output_0)" in read_from_chain.durations_note()
