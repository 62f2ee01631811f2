"""Recovering a PyTorch Kokoro state dict from a float32 ONNX export (issue #8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from parity.builders.recover import _scope_path, recover_state_dict
from parity.core.errors import ParityError
from parity.judge.tolerances import RECOVERY


@pytest.mark.parametrize(
    ("node", "scope"),
    [
        ("/encoder/text_encoder/cnn.0/cnn.0.0/Conv", "encoder.text_encoder.cnn.0.0"),
        (
            "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0/attention/query_3/MatMul",
            "encoder.bert.encoder.albert_layer_groups.0.albert_layers.0.attention.query",
        ),
        ("/decoder/decoder/asr_res/asr_res.0/Conv", "decoder.decoder.asr_res.0"),
    ],
    ids=["sequential-child", "shared-albert-call", "nested-sequential"],
)
def test_node_scopes_name_the_module_that_ran(node: str, scope: str) -> None:
    assert _scope_path(node) == scope


def _effective(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """A weight-normed weight as the module uses it (g * v / ||v||), else the tensor."""
    if key.endswith("weight_g"):
        g, v = state[key], state[f"{key[:-2]}_v"]
        return g * v / v.flatten(1).norm(dim=1).reshape(g.shape)
    return state[key]


def test_recovers_every_weight_of_our_own_export(tmp_path: Path) -> None:
    """Tiny Kokoro, every parameter made distinct (the exporter merges equal initializers),
    exported with TorchScript: the mapping must give each parameter back."""
    from parity.builders.export import export_kokoro
    from parity.builders.model import build_kokoro

    model = build_kokoro("tiny", seed=3)
    noise = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=noise) * 1e-3)
    result = export_kokoro(model, tmp_path / "tiny.onnx")
    assert result.ok, result.summary()

    recovered = recover_state_dict(onnx.load(str(tmp_path / "tiny.onnx")), preset="tiny")

    assert recovered.lstm == 4
    assert recovered.unused == ("bert.pooler.weight", "bert.pooler.bias")
    original = model.state_dict()
    for key in original:
        if key.startswith(("decoder.generator.stft.", "bert.pooler.")) or key.endswith("_v"):
            continue
        torch.testing.assert_close(
            _effective(recovered.state, key), _effective(original, key), msg=key
        )


def test_recover_refuses_a_graph_that_is_not_kokoro() -> None:
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.ones(16, np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/mm/MatMul")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    with pytest.raises(ParityError, match=r"Kokoro parameters have no counterpart .* \(first: "):
        recover_state_dict(helper.make_model(graph), preset="tiny")


def test_recovered_trained_model_is_the_onnx_one_and_sounds_like_the_int8(
    kokoro_trained, trained_checkpoint, parity_inputs, parity_record, tmp_path
) -> None:
    """PyTorch with the recovered weights against the float32 ONNX they came from (durations
    equal, waveform within the fp32 export bar) and the int8 export (within its noise)."""
    from parity.builders.model import build_kokoro
    from parity.judge.recovery import HELD_SENTENCES, prove_recovery

    fp32, voices = kokoro_trained
    requests = voices.spoken_by([parity_inputs.case_for(HELD_SENTENCES[0], voices.vocab)])
    model = build_kokoro(checkpoint=trained_checkpoint)

    proof = prove_recovery(model, fp32.path, fp32.int8_path, requests, tmp_path / "mel.png")

    parity_record.add("trained weights", f"recovered PyTorch: {proof.summary()}")
    assert all(check.durations_equal for check in proof.checks)
    assert max(check.forced_rel for check in proof.checks) < RECOVERY.forced_rel
    assert all(abs(row.length_ratio - 1) <= RECOVERY.length_change for row in proof.against_int8)
    assert proof.noise_to_voice_ratio < RECOVERY.noise_to_voice
    assert max(row.log_mel for row in proof.against_int8) < min(proof.between_voices)
    assert (tmp_path / "mel.png").stat().st_size > 10_000
