"""fp32 parity: each float32 file in ONNX Runtime against PyTorch, stage by stage, on the
fixture inputs (``parity.judge.checks``)."""

from __future__ import annotations

import pytest

from parity.judge.checks import check_against_pytorch
from parity.judge.tolerances import FP32

pytestmark = [pytest.mark.parity, pytest.mark.judges("fp32")]


@pytest.mark.parametrize("case", ["one-token", "sentence", "context-limit"])
def test_parity_fp32_onnxruntime_matches_pytorch(
    case, parity_subject, parity_files, parity_inputs, parity_config, parity_record
) -> None:
    model = parity_files.model(parity_subject)
    result = check_against_pytorch(
        model,
        parity_files.forcing(parity_subject),
        parity_inputs.case(case, model.vocab),
        FP32,
        max_gain_db=parity_config.max_gain_db,
    )
    parity_record.add("fp32 parity", f"{parity_subject.name} {result.summary()}")
    assert result, result.report()
