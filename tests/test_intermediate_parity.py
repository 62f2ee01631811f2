"""Intermediate parity: every Kokoro module boundary matches PyTorch.

The walk compares module outputs in the order PyTorch finishes them, so the first row over
tolerance is the module at fault; ``test_localize_faults.py`` plants faults to prove it.
"""

from __future__ import annotations

import pytest

from parity.judge.localize import (
    BOUNDARY_PATTERNS,
    IntermediateReport,
    boundary_regex,
    compare_intermediates,
)
from parity.judge.tolerances import INTERMEDIATE

pytestmark = pytest.mark.parity

CASE = "sentence"


@pytest.fixture(scope="module")
def request_input(parity_inputs, kokoro_model):
    return parity_inputs.case(CASE, kokoro_model.vocab)


@pytest.fixture(scope="module")
def fp32_report(kokoro_model, kokoro_intermediate, request_input, parity_record):
    report = compare_intermediates(kokoro_model, kokoro_intermediate, request_input, INTERMEDIATE)
    worst = max(
        (row for row in report.rows if row.comparison), key=lambda row: row.comparison.rms_rel
    )
    parity_record.add(
        "intermediate",
        f"{CASE}: {len(report.rows)} module outputs, worst {worst.name} rms_rel "
        f"{worst.comparison.rms_rel:.2g}"
        + ("" if report else f", FIRST: {report.first_failure.describe()}"),
    )
    return report


def _rows_of(report: IntermediateReport, pattern: str):
    regex = boundary_regex(pattern)
    return [row for row in report.rows if regex.match(row.module)]


@pytest.mark.parametrize(
    "pattern", list(BOUNDARY_PATTERNS), ids=[p.replace(".{i}", "") for p in BOUNDARY_PATTERNS]
)
def test_parity_module_boundary_matches_pytorch(pattern, fp32_report, parity_config) -> None:
    rows = _rows_of(fp32_report, pattern)
    if not rows and pattern.startswith("decoder.generator.stft."):
        pytest.skip(f"--parity-stft={parity_config.spec.stft} has no STFT submodules to compare")
    assert rows, f"no output of {pattern} was matched:\n{fp32_report.table()}"
    failing = [row for row in rows if not row.within]
    assert not failing, fp32_report.table(failing_context=3)


def test_parity_walk_follows_execution_order(fp32_report) -> None:
    modules = [row.module for row in fp32_report.rows]
    assert modules.index("bert") < modules.index("predictor.lstm") < modules.index("text_encoder")
    assert modules.index("decoder.decode.3") < modules.index("decoder.generator.m_source")
    assert modules[-1] == "decoder.generator"


def test_parity_layouts_that_differ_are_matched_not_failed(fp32_report) -> None:
    layouts = {row.module: row.comparison.layout for row in fp32_report.rows if row.comparison}
    # DurationEncoder returns batch-first [B, T, C]; the graph keeps [B, C, T] until later.
    assert layouts["predictor.text_encoder"].startswith("transpose")
    # The shared LSTM's [B, T, 2H] is an ONNX LSTM output [T, 2, B, H] reshaped with a unit axis.
    assert layouts["predictor.shared"] != "same"
    assert all(row.within for row in fp32_report.rows if row.comparison.layout != "same")
