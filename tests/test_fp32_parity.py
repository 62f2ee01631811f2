"""fp32 parity: the exported Kokoro in ONNX Runtime against PyTorch, on the fixture inputs."""

from __future__ import annotations

import pytest

from parity.judge.checks import check_against_pytorch
from parity.judge.tolerances import FP32

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("case", ["one-token", "sentence", "context-limit"])
def test_parity_fp32_onnxruntime_matches_pytorch(
    case, kokoro_model, kokoro_forcing, parity_inputs, parity_record
) -> None:
    result = check_against_pytorch(
        kokoro_model, kokoro_forcing, parity_inputs.case(case, kokoro_model.vocab), FP32
    )
    parity_record.add("fp32 parity", result.summary())
    assert result, result.report()
