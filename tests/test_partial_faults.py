"""Faults on a few requests fail the verdict: each axis is bounded on the worst request as
well as on the mean, so a fault that leaves most requests clean cannot hide in an average.

Each fault is planted in the dynamic uint8 variant's graph behind a condition on its inputs,
so it sounds on a minority of the held-out requests only: a whine on the longest two
sentences, static in one voice, a length change in one request. The same file without the
fault passes its gate (``test_quantize_parity``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.voices import voice_of
from parity.core.spec import SAMPLE_RATE
from parity.judge.quality import AXES, LABELS
from parity.judge.variant_registry import variant

pytestmark = pytest.mark.harness(
    "judge/quality.py", "judge/tolerances", "judge/variant_registry.py", "builders/voices.py"
)

VARIANT = "dynamic-uint8"
STATIC_VOICE = "am_michael"  # an official pack; speaks 2 of the 23 held-out requests
SLOWED = "held-quote/bf_emma"  # one request
WHINE_HZ, WHINE_AMPLITUDE = 7_000.0, 0.003  # -30 dB under speech at rms 0.1
STATIC_AMPLITUDE = 0.01  # uniform in +-0.005: rms 0.003, -30 dB
SLOWDOWN = 1.08  # its durations 8% longer

Plant = Callable[[onnx.GraphProto, list[onnx.NodeProto]], str]


def _constant(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def _gate_on_tokens_over(graph: onnx.GraphProto, nodes: list, tokens: str, count: int) -> str:
    """1.0 when the request has more than ``count`` phonemes, else 0.0."""
    _constant(graph, "pf_one", np.asarray(1, dtype=np.int64))
    _constant(graph, "pf_count", np.asarray(count + 2, dtype=np.int64))  # + boundary tokens
    nodes += [
        helper.make_node("Shape", [tokens], ["pf_tok_shape"]),
        helper.make_node("Gather", ["pf_tok_shape", "pf_one"], ["pf_tok_len"]),
        helper.make_node("Greater", ["pf_tok_len", "pf_count"], ["pf_long"]),
        helper.make_node("Cast", ["pf_long"], ["pf_gate"], to=TensorProto.FLOAT),
    ]
    return "pf_gate"


def _gate_on_styles(graph: onnx.GraphProto, nodes: list, style: str, rows: np.ndarray) -> str:
    """1.0 when the style vector is one of ``rows`` [K, 256], else 0.0."""
    _constant(graph, "pf_rows", rows.astype(np.float32))
    _constant(graph, "pf_axis", np.asarray([1], dtype=np.int64))
    _constant(graph, "pf_eps", np.asarray(1e-10, dtype=np.float32))
    nodes += [
        helper.make_node("Sub", [style, "pf_rows"], ["pf_diff"]),
        helper.make_node("Mul", ["pf_diff", "pf_diff"], ["pf_sq"]),
        helper.make_node("ReduceSum", ["pf_sq", "pf_axis"], ["pf_dist"], keepdims=0),
        helper.make_node("ReduceMin", ["pf_dist"], ["pf_nearest"], keepdims=0),
        helper.make_node("Less", ["pf_nearest", "pf_eps"], ["pf_is"]),
        helper.make_node("Cast", ["pf_is"], ["pf_gate"], to=TensorProto.FLOAT),
    ]
    return "pf_gate"


def _sample_index(graph: onnx.GraphProto, nodes: list, audio: str) -> str:
    """0, 1, ... over the audio's samples, as float."""
    _constant(graph, "pf_zero_i", np.asarray(0, dtype=np.int64))
    _constant(graph, "pf_zero_f", np.asarray(0.0, dtype=np.float32))
    _constant(graph, "pf_step_f", np.asarray(1.0, dtype=np.float32))
    nodes += [
        helper.make_node("Shape", [audio], ["pf_audio_shape"]),
        helper.make_node("Gather", ["pf_audio_shape", "pf_zero_i"], ["pf_samples_i"]),
        helper.make_node("Cast", ["pf_samples_i"], ["pf_samples"], to=TensorProto.FLOAT),
        helper.make_node("Range", ["pf_zero_f", "pf_samples", "pf_step_f"], ["pf_n"]),
    ]
    return "pf_n"


def _add_to_audio(graph: onnx.GraphProto, nodes: list, audio: str, fault: str) -> None:
    nodes.append(helper.make_node("Add", [audio, fault], [graph.output[0].name]))


def _rewire_output(graph: onnx.GraphProto) -> str:
    """Rename the audio output's producer so a planted node can write the output."""
    name = graph.output[0].name
    for node in graph.node:
        for index, output in enumerate(node.output):
            if output == name:
                node.output[index] = "pf_audio_clean"
    return "pf_audio_clean"


def whine_on_long_requests(count: int) -> Callable[[onnx.ModelProto], None]:
    def plant(model: onnx.ModelProto) -> None:
        graph, nodes = model.graph, []
        audio = _rewire_output(graph)
        gate = _gate_on_tokens_over(graph, nodes, graph.input[0].name, count)
        n = _sample_index(graph, nodes, audio)
        _constant(graph, "pf_omega", np.float32(2 * np.pi * WHINE_HZ / SAMPLE_RATE))
        _constant(graph, "pf_amp", np.float32(WHINE_AMPLITUDE))
        nodes += [
            helper.make_node("Mul", [n, "pf_omega"], ["pf_phase"]),
            helper.make_node("Sin", ["pf_phase"], ["pf_tone"]),
            helper.make_node("Mul", ["pf_tone", "pf_amp"], ["pf_tone_a"]),
            helper.make_node("Mul", ["pf_tone_a", gate], ["pf_fault"]),
        ]
        _add_to_audio(graph, nodes, audio, "pf_fault")
        graph.node.extend(nodes)

    return plant


def static_in_voice(pack: np.ndarray) -> Callable[[onnx.ModelProto], None]:
    def plant(model: onnx.ModelProto) -> None:
        graph, nodes = model.graph, []
        audio = _rewire_output(graph)
        gate = _gate_on_styles(graph, nodes, graph.input[1].name, pack)
        n = _sample_index(graph, nodes, audio)
        # A shader's hash, fract(sin(n * 12.9898) * 43758.5453): white, and deterministic.
        _constant(graph, "pf_k", np.float32(12.9898))
        _constant(graph, "pf_spread", np.float32(43758.5453))
        _constant(graph, "pf_half", np.float32(0.5))
        _constant(graph, "pf_amp", np.float32(STATIC_AMPLITUDE))
        nodes += [
            helper.make_node("Mul", [n, "pf_k"], ["pf_arg"]),
            helper.make_node("Sin", ["pf_arg"], ["pf_sin"]),
            helper.make_node("Mul", ["pf_sin", "pf_spread"], ["pf_big"]),
            helper.make_node("Floor", ["pf_big"], ["pf_floor"]),
            helper.make_node("Sub", ["pf_big", "pf_floor"], ["pf_fract"]),
            helper.make_node("Sub", ["pf_fract", "pf_half"], ["pf_noise"]),
            helper.make_node("Mul", ["pf_noise", "pf_amp"], ["pf_noise_a"]),
            helper.make_node("Mul", ["pf_noise_a", gate], ["pf_fault"]),
        ]
        _add_to_audio(graph, nodes, audio, "pf_fault")
        graph.node.extend(nodes)

    return plant


def slower_on_one_request(style: np.ndarray) -> Callable[[onnx.ModelProto], None]:
    def plant(model: onnx.ModelProto) -> None:
        graph, nodes = model.graph, []
        speed = graph.input[2].name
        for node in graph.node:
            node.input[:] = ["pf_speed" if name == speed else name for name in node.input]
        gate = _gate_on_styles(graph, nodes, graph.input[1].name, style.reshape(1, -1))
        _constant(graph, "pf_slow", np.float32(1 / SLOWDOWN - 1))
        _constant(graph, "pf_unit", np.float32(1.0))
        nodes += [
            helper.make_node("Mul", [gate, "pf_slow"], ["pf_delta"]),
            helper.make_node("Add", ["pf_delta", "pf_unit"], ["pf_scale"]),
            helper.make_node("Mul", [speed, "pf_scale"], ["pf_speed"]),
        ]
        # Before every node that reads the speed, so the graph stays in topological order.
        for node in reversed(nodes):
            graph.node.insert(0, node)

    return plant


@pytest.fixture(scope="module")
def planted(trained_variant, tmp_path_factory) -> Callable[[str, Callable], Path]:
    source = trained_variant(VARIANT).path
    folder = tmp_path_factory.mktemp("partial-faults")

    def write(name: str, plant: Callable[[onnx.ModelProto], None]) -> Path:
        model = onnx.load(source)
        plant(model)
        onnx.checker.check_model(model)
        path = folder / f"{name}.onnx"
        onnx.save(model, path)
        return path

    return write


def _faults(requests, voices) -> dict[str, tuple[Callable, set[str]]]:
    """Each fault's plant, and the held-out requests it sounds on."""
    lengths = sorted({len(r.phonemes) for r in requests}, reverse=True)
    longest_two = {r.name for r in requests if len(r.phonemes) >= lengths[1]}
    slowed = next(r for r in requests if r.name == SLOWED)
    return {
        "whine-on-the-longest-two-sentences": (
            whine_on_long_requests(lengths[2]),
            longest_two,
        ),
        f"static-in-{STATIC_VOICE}-only": (
            static_in_voice(voices.pack(STATIC_VOICE)[:, 0, :]),
            {r.name for r in requests if voice_of(r) == STATIC_VOICE},
        ),
        "length-change-in-one-request": (slower_on_one_request(slowed.style), {SLOWED}),
    }


FAULTS = (
    "whine-on-the-longest-two-sentences",
    f"static-in-{STATIC_VOICE}-only",
    "length-change-in-one-request",
)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_on_a_few_requests_fails_the_variant_gate(
    fault, planted, trained_held_out, trained_verdict, kokoro_trained, parity_record
) -> None:
    """The gate fails on a worst-request bound, and the request that set each failing worst
    figure is one the fault sounds on."""
    plant, affected = _faults(trained_held_out, kokoro_trained[1])[fault]
    assert 0 < len(affected) <= len(trained_held_out) // 4, affected  # a minority
    quality = trained_verdict(
        f"{VARIANT}+{fault}", planted(fault, plant), variant(VARIANT).tolerance
    )
    parity_record.add("planted partial faults", quality.summary())
    assert not quality, quality.report()
    worst = [axis for axis in AXES if any(f"worst {LABELS[axis]} " in f for f in quality.failures)]
    assert worst, quality.report()
    for axis in worst:
        assert quality.worst_request(axis) in affected, (axis, quality.report())


def test_the_same_file_without_a_fault_passes(trained_variant, trained_verdict) -> None:
    quality = trained_verdict(VARIANT, trained_variant(VARIANT).path, variant(VARIANT).tolerance)
    assert quality, quality.report()
