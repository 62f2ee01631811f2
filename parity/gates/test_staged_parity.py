"""Staged parity: each float file (float32 and float16) in ONNX Runtime against PyTorch
float32, stage by stage, on the fixture inputs, by the bounds of its precision
(``parity.judge.checks``; FP32 and FP16 in ``parity.judge.tolerances``)."""

from __future__ import annotations

import pytest

from parity.judge.checks import check_against_pytorch
from parity.judge.verdict import staged_tolerance

pytestmark = [pytest.mark.parity, pytest.mark.judges("fp32", "fp16")]

SECTION = {"fp32": "fp32 parity", "fp16": "float16 parity"}


@pytest.mark.parametrize("case", ["one-token", "sentence", "context-limit"])
def test_parity_staged_onnxruntime_matches_pytorch(
    case, parity_subject, parity_files, parity_inputs, parity_config, parity_record
) -> None:
    """Same durations; generator inputs, source, its STFT and the forced generator within
    the rounding of the file's precision (on --parity-provider's backend, by its bounds);
    the output gain printed first."""
    model = parity_files.model(parity_subject)
    result = check_against_pytorch(
        model,
        parity_files.forcing(parity_subject),
        parity_inputs.case(case, model.vocab),
        staged_tolerance(parity_subject.precision, parity_config.provider),
        max_gain_db=parity_config.max_gain_db,
    )
    parity_record.add(
        SECTION[parity_subject.precision], f"{parity_subject.name} {result.summary()}"
    )
    assert result, result.report()
