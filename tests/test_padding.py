"""The export pads Kokoro's LSTM encoders with ``Pad``, not kokoro's ``ScatterND``
(``parity.builders.padding``): the same numbers, without the op kokoro-js 1.2.1's WebGPU
runtime computes wrong (docs/webgpu.md)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from torch import nn

from parity.builders.export import export_cached
from parity.builders.model import build_model
from parity.builders.padding import padding_as_pad
from parity.core.spec import KokoroSpec
from parity.judge.runners import OrtRunner, TorchRunner

pytestmark = pytest.mark.harness("builders/padding.py", "builders/export.py")

CASES = ("one-token", "sentence", "context-limit")


@pytest.fixture(scope="module")
def tiny():
    return build_model(KokoroSpec(preset="tiny"))


@pytest.fixture(scope="module")
def exports(tiny, parity_cache):
    spec = KokoroSpec(preset="tiny")
    paths = {}
    for padding in ("pad", "scatter"):
        result = export_cached(parity_cache, spec, tiny, padding=padding)
        assert result.ok, result.error_line
        paths[padding] = result.path
    return paths


def scatter_nodes(path) -> list[str]:
    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type == "ScatterND"]


def test_the_export_pads_the_lstm_encoders_without_scatternd(tiny, exports) -> None:
    """kokoro's slice assignments (the text encoder's LSTM, each of the duration encoder's)
    are ScatterND as kokoro wrote them and gone from parity's export; the alignment's
    ScatterND (``pred_aln_trg[indices, ...] = 1``) is another op's and stays."""
    padded_lstms = 1 + sum(isinstance(b, nn.LSTM) for b in tiny.predictor.text_encoder.lstms)
    as_written, ours = scatter_nodes(exports["scatter"]), scatter_nodes(exports["pad"])
    assert len(as_written) - len(ours) == padded_lstms, (as_written, ours)
    assert not [name for name in ours if "text_encoder" in name], ours


@pytest.mark.parametrize("case", CASES)
def test_pad_and_scatter_exports_agree_bit_for_bit(case, tiny, exports, parity_inputs) -> None:
    request = parity_inputs.case(case, tiny.vocab)
    ours = OrtRunner(exports["pad"]).infer(request)
    as_written = OrtRunner(exports["scatter"]).infer(request)
    np.testing.assert_array_equal(ours.durations, as_written.durations)
    np.testing.assert_array_equal(ours.waveform, as_written.waveform)


def test_pytorch_pads_the_same_with_either(tiny, parity_inputs) -> None:
    request = parity_inputs.case("sentence", tiny.vocab)
    kokoro = TorchRunner(tiny).infer(request)
    with padding_as_pad(tiny):
        ours = TorchRunner(tiny).infer(request)
    np.testing.assert_array_equal(ours.waveform, kokoro.waveform)
    np.testing.assert_array_equal(ours.durations, kokoro.durations)
    assert "forward" not in vars(tiny.predictor.text_encoder), "forward was not restored"
