"""A float16 file the run converted, against the float32 file it came from: half the size or
less, and valid (the strict checker, an ONNX Runtime session, no redundant Casts, the same
interface). Its staged parity is in ``test_staged_parity``."""

from __future__ import annotations

import pytest

from parity.builders.fp16 import audit_files
from parity.judge.tolerances import FP16_MAX_SIZE_RATIO

pytestmark = [pytest.mark.parity, pytest.mark.judges("fp16")]


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
