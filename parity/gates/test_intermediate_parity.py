"""Intermediate parity: every Kokoro module boundary of each float32 file matches PyTorch.

The walk compares module outputs in the order PyTorch finishes them, so the first row over
tolerance is the module at fault; ``tests/test_localize_faults.py`` and
``tests/test_layouts.py`` plant faults to prove it.
"""

from __future__ import annotations

import pytest

from parity.judge.boundaries import BOUNDARY_PATTERNS
from parity.judge.localize import compare_intermediates
from parity.judge.tolerances import INTERMEDIATE

pytestmark = [pytest.mark.parity, pytest.mark.judges("fp32")]

CASE = "sentence"


@pytest.fixture(scope="module")
def fp32_report(parity_subject, parity_files, parity_inputs, parity_record):
    model = parity_files.model(parity_subject)
    request = parity_inputs.case(CASE, model.vocab)
    session = parity_files.intermediate(parity_subject, request)
    report = compare_intermediates(model, session, request, INTERMEDIATE)
    worst = max(
        (row for row in report.rows if row.comparison and row.statistic is None),
        key=lambda row: row.comparison.rms_rel,
    )
    parity_record.add(
        "intermediate",
        f"{parity_subject.name} {CASE}: {len(report.rows)} module outputs, worst {worst.name} "
        f"rms_rel {worst.comparison.rms_rel:.2g}"
        + ("" if report else f", FIRST: {report.first_failure.describe()}")
        + (f"; not compared: {', '.join(report.unplaced)}" if report.unplaced else ""),
    )
    return report


@pytest.mark.parametrize(
    "pattern", list(BOUNDARY_PATTERNS), ids=[p.replace(".{i}", "") for p in BOUNDARY_PATTERNS]
)
def test_parity_module_boundary_matches_pytorch(
    pattern, fp32_report, parity_subject, parity_files
) -> None:
    stft = parity_files.spec_for(parity_subject).stft
    problem = fp32_report.boundary_problem(pattern, stft)
    assert problem is None, problem


def test_parity_walk_follows_execution_order(fp32_report) -> None:
    modules = [row.module for row in fp32_report.rows]
    assert modules.index("bert") < modules.index("predictor.lstm") < modules.index("text_encoder")
    assert modules.index("decoder.decode.3") < modules.index("decoder.generator.m_source")
    assert modules[-1] == "decoder.generator"


def test_parity_layouts_that_differ_are_matched_not_failed(fp32_report, parity_subject) -> None:
    compared = [row for row in fp32_report.rows if row.comparison]
    layouts = {row.module: row.comparison.layout for row in compared}
    assert all(row.within for row in compared if row.comparison.layout != "same")
    # The shared LSTM's [B, T, 2H] is an ONNX LSTM output [T, 2, B, H] reshaped with a unit axis.
    assert layouts["predictor.shared"] != "same"
    if parity_subject.origin == "export" and parity_subject.hook is None:
        # DurationEncoder returns batch-first [B, T, C]; our graph keeps [B, C, T] until later.
        assert layouts["predictor.text_encoder"].startswith("transpose")
