"""The dynamo exporter on Kokoro (tiny preset): its patches compute what kokoro computes, and
its export passes the staged fp32 check, localises, and goes through float16 and int8 as the
TorchScript export does. ``--parity-exporter dynamo`` runs the whole gate on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from parity.builders.dynamo import MIN_TOKENS, dynamo_ready
from parity.builders.export import ExportResult, export_cached, trace_inputs
from parity.builders.export_warnings import exporter_warnings
from parity.builders.fp16 import KOKORO_FP16, convert_file
from parity.builders.model import build_model
from parity.builders.quantize import QuantRecipe, quantize_model
from parity.core.cache import ArtifactCache
from parity.core.graph import load_model
from parity.core.memo import RunStore, state_digest
from parity.core.spec import KokoroSpec
from parity.judge.boundaries import IntermediateSession
from parity.judge.checks import check_against_pytorch
from parity.judge.forcing import ForcingSession
from parity.judge.intermediate import onnx_scope_prefixes
from parity.judge.localize import compare_intermediates
from parity.judge.tolerances import (
    EAGER_ATTENTION_RMS_REL,
    FP16,
    FP32,
    INTERMEDIATE,
    ONNX_STFT_OP_RMS_REL,
)

pytestmark = pytest.mark.harness(
    "builders/dynamo.py", "builders/export.py", "core/scopes.py", "judge/checks.py"
)

CASES = ("one-token", "sentence", "context-limit")


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return build_model(KokoroSpec(preset="tiny"))


def _export(cache: ArtifactCache, model: torch.nn.Module, exporter: str) -> ExportResult:
    result = export_cached(cache, KokoroSpec(preset="tiny"), model, exporter=exporter)  # type: ignore[arg-type]
    assert result.ok, result.summary()
    return result


@pytest.fixture(scope="module")
def dynamo(parity_cache: ArtifactCache, tiny: torch.nn.Module) -> ExportResult:
    return _export(parity_cache, tiny, "dynamo")


@pytest.fixture(scope="module")
def torchscript(parity_cache: ArtifactCache, tiny: torch.nn.Module) -> ExportResult:
    return _export(parity_cache, tiny, "torchscript")


@pytest.fixture(scope="module")
def tiny_eager() -> torch.nn.Module:
    """The same weights with transformers' eager attention, the one patch that rounds apart."""
    model = build_model(KokoroSpec(preset="tiny"))
    model.bert.set_attn_implementation("eager")
    return model


@pytest.mark.parametrize("tokens", [MIN_TOKENS, 24, 300], ids=lambda n: f"{n}-tokens")
def test_patched_copy_computes_what_kokoro_computes_bit_for_bit(tiny, tiny_eager, tokens) -> None:
    ids, style, speed = trace_inputs(seed=tokens, length=tokens)
    before = state_digest(tiny)
    with torch.no_grad():
        audio, durations = tiny_eager.forward_with_tokens(ids, style, 1.0)
        patched_audio, patched_durations = dynamo_ready(tiny)(ids, style, speed)
    assert torch.equal(patched_durations, durations)
    assert torch.equal(patched_audio, audio)
    assert state_digest(tiny) == before, "the patches must leave the user's model untouched"
    assert "forward" not in vars(tiny)


@pytest.mark.parametrize("tokens", [MIN_TOKENS, 300], ids=lambda n: f"{n}-tokens")
def test_eager_attention_rounds_apart_from_sdpa_only(tiny, tiny_eager, tokens) -> None:
    ids = trace_inputs(seed=tokens, length=tokens)[0]
    mask = torch.ones_like(ids)
    with torch.no_grad():
        sdpa, eager = tiny.bert(ids, attention_mask=mask), tiny_eager.bert(ids, attention_mask=mask)
    assert 0 < float((sdpa - eager).norm() / sdpa.norm()) < EAGER_ATTENTION_RMS_REL


def test_dynamo_export_names_nodes_as_torchscript_does(dynamo, torchscript) -> None:
    """Every module scope of the TorchScript export is a scope of the dynamo export too."""
    ours = onnx_scope_prefixes(load_model(dynamo.path, external_data=False))
    theirs = onnx_scope_prefixes(load_model(torchscript.path, external_data=False))
    # TorchScript's renamed collisions (/text_encoder_1/) have no counterpart: dynamo
    # names the same nodes /text_encoder/.
    expected = {scope for scope in theirs if "_1/" not in scope and "_2/" not in scope}
    # N.0 and F0.0 instance-normalise the same tensor with the same weights (1 and 0), and
    # the dynamo exporter's common-subexpression pass keeps one of the two nodes.
    merged = {"/N.0/norm1/norm/"}
    assert expected - set(ours) == merged


@pytest.mark.parametrize("case", CASES)
def test_dynamo_export_passes_the_staged_fp32_check(
    case, dynamo, tiny, parity_inputs, parity_runs: RunStore
) -> None:
    session = ForcingSession(dynamo.path, runs=parity_runs)
    result = check_against_pytorch(tiny, session, parity_inputs.case(case, tiny.vocab), FP32)
    assert result, result.report()


def test_dynamo_export_localises_every_module(
    dynamo, tiny, parity_inputs, parity_runs: RunStore
) -> None:
    request = parity_inputs.case("sentence", tiny.vocab)
    session = IntermediateSession.for_kokoro(dynamo.path, tiny, request, runs=parity_runs)
    report = compare_intermediates(tiny, session, request, INTERMEDIATE)
    assert report, report.first_failure.describe()
    named = {row.name.split("[")[0] for row in report.rows if row.comparison}
    assert {"bert", "predictor.lstm", "decoder.generator.m_source", "decoder.generator"} <= named


def test_dynamo_export_goes_through_float16(
    dynamo, torchscript, tiny, parity_inputs, tmp_path: Path, parity_runs: RunStore
) -> None:
    ours = convert_file(dynamo.path, tmp_path / "dynamo-fp16.onnx", KOKORO_FP16)
    theirs = convert_file(torchscript.path, tmp_path / "torchscript-fp16.onnx", KOKORO_FP16)
    # The duration head is blocked by node name (/Sigmoid, /ReduceSum, /Div, /Round).
    assert ours.blocked_by.get("--block-node") == theirs.blocked_by.get("--block-node") == 4
    session = ForcingSession(tmp_path / "dynamo-fp16.onnx", runs=parity_runs)
    result = check_against_pytorch(tiny, session, parity_inputs.case("sentence", tiny.vocab), FP16)
    assert result, result.report()


def test_dynamo_export_quantizes_the_same_layers_as_torchscript(
    dynamo, torchscript, tmp_path: Path
) -> None:
    ours = quantize_model(dynamo.path, tmp_path / "dynamo-int8.onnx", QuantRecipe())
    theirs = quantize_model(torchscript.path, tmp_path / "torchscript-int8.onnx", QuantRecipe())
    assert ours.integer_ops == theirs.integer_ops, (ours.summary(), theirs.summary())
    assert ours.excluded == theirs.excluded > 0


class _KokoroAnalysis(torch.nn.Module):
    """kokoro's complex STFT, forward half: ``torch.stft`` to magnitude and phase."""

    def __init__(self) -> None:
        super().__init__()
        from kokoro.istftnet import TorchSTFT

        self.stft = TorchSTFT(filter_length=20, hop_length=5, win_length=20)  # Kokoro's sizes

    def forward(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stft.transform(signal)


@pytest.mark.landscape
def test_complex_stft_exports_to_the_onnx_stft_op_and_matches_torch_on_cpu() -> None:
    """The half of kokoro's complex STFT that dynamo exports. Measured once in onnxruntime-web
    1.30 (WebAssembly, 1 thread) on the same graph: complex rms_rel 1.7e-6, as on CPU."""
    import numpy as np
    import onnxruntime as ort

    analysis = _KokoroAnalysis().eval()
    samples = torch.export.Dim("samples", min=40, max=10**6)
    with exporter_warnings():  # torch's own deprecations, kept out of the test's way
        program = torch.onnx.export(
            analysis, (torch.zeros(1, 4800),), dynamo=True, dynamic_shapes=({1: samples},)
        )
    graph = program.model_proto
    assert "STFT" in {node.op_type for node in graph.graph.node}
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    for length in (4800, 48_000):
        signal = torch.randn(1, length, generator=torch.Generator().manual_seed(length)) * 0.3
        magnitude, phase = (t.numpy() for t in analysis(signal))
        onnx_magnitude, onnx_phase = session.run(None, {"signal": signal.numpy()})
        expected = magnitude * np.exp(1j * phase)
        found = onnx_magnitude * np.exp(1j * onnx_phase)
        # Phase alone is compared through the complex value, since it is arbitrary where the
        # magnitude is near zero.
        assert np.linalg.norm(found - expected) / np.linalg.norm(expected) < ONNX_STFT_OP_RMS_REL
