"""float16 files against PyTorch float32, stage by stage, and a converted file audited."""

from __future__ import annotations

import pytest

from parity.builders.fp16 import audit_files
from parity.judge.checks import check_against_pytorch
from parity.judge.tolerances import FP16, FP16_MAX_SIZE_RATIO

pytestmark = [pytest.mark.parity, pytest.mark.judges("fp16")]


@pytest.mark.parametrize("case", ["one-token", "sentence", "context-limit"])
def test_parity_fp16_matches_pytorch_stage_by_stage(
    case, parity_subject, parity_files, parity_inputs, parity_config, parity_record
) -> None:
    """Same durations; generator inputs, source and forced generator within float16 rounding."""
    model = parity_files.model(parity_subject)
    result = check_against_pytorch(
        model,
        parity_files.forcing(parity_subject),
        parity_inputs.case(case, model.vocab),
        FP16,
        max_gain_db=parity_config.max_gain_db,
    )
    parity_record.add("float16 parity", f"{parity_subject.name} {result.summary()}")
    assert result, result.report()


def test_parity_fp16_halves_the_model_and_is_valid(
    parity_subject, parity_files, parity_runs, parity_record
) -> None:
    """Against the float32 file it was converted from; a prebuilt file has none here."""
    source = parity_files.source_of(parity_subject)
    if source is None:
        pytest.skip(f"{parity_subject.name} is prebuilt: no float32 file of this run it came from")
    path = parity_files.path(parity_subject)
    ratio = path.stat().st_size / source.stat().st_size
    parity_record.add("float16", f"{parity_subject.name}: {ratio:.2f}x the float32 file's size")
    assert ratio <= FP16_MAX_SIZE_RATIO, f"{ratio:.2f}x > {FP16_MAX_SIZE_RATIO}"
    found = audit_files(path, source, parity_runs)
    assert found, found.summary()
