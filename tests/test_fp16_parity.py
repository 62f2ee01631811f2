"""float16 Kokoro against PyTorch float32, stage by stage, and the converted file audited."""

from __future__ import annotations

import pytest

from parity.builders.fp16 import audit_files
from parity.judge.checks import check_against_pytorch
from parity.judge.tolerances import FP16, FP16_MAX_SIZE_RATIO

pytestmark = pytest.mark.parity


@pytest.mark.parametrize("case", ["one-token", "sentence", "context-limit"])
def test_parity_fp16_matches_pytorch_stage_by_stage(
    case, kokoro_model, kokoro_fp16_forcing, parity_inputs, parity_record
) -> None:
    """Same durations; generator inputs, source and forced generator within float16 rounding."""
    result = check_against_pytorch(
        kokoro_model, kokoro_fp16_forcing, parity_inputs.case(case, kokoro_model.vocab), FP16
    )
    parity_record.add("float16 parity", result.summary())
    assert result, result.report()


def test_parity_fp16_halves_the_model_and_is_valid(kokoro_fp16, kokoro_export, parity_runs) -> None:
    report = kokoro_fp16.report
    assert report.size_after <= FP16_MAX_SIZE_RATIO * kokoro_export.size_bytes, report.summary()
    found = audit_files(kokoro_fp16.path, kokoro_export.path, parity_runs)
    assert found, found.summary()
