"""float16 Kokoro against PyTorch float32, and the other converters on the same export."""

from __future__ import annotations

import pytest

from parity.checks import check_against_pytorch
from parity.fp16 import audit
from parity.graph import load_model
from parity.tolerances import FP16, FP16_MAX_SIZE_RATIO

from fp16_graphs import onnxconverter_common, onnxruntime_converter, quietly

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


def test_parity_fp16_halves_the_model_and_is_valid(kokoro_fp16, kokoro_export) -> None:
    report = kokoro_fp16.report
    assert report.size_after <= FP16_MAX_SIZE_RATIO * kokoro_export.size_bytes, report.summary()
    found = audit(load_model(kokoro_fp16.path), load_model(kokoro_export.path))
    assert found, found.summary()


@pytest.fixture(scope="module")
def tiny_export(parity_cache):
    """The tiny preset's export: every op and subgraph of the full one (the Loop, the Ifs,
    the LSTMs), so the other converters fail on it as on the full one, in half the time."""
    from parity.export import export_cached
    from parity.model import KokoroSpec

    spec = KokoroSpec(preset="tiny")
    result = export_cached(parity_cache, spec, spec.build())
    assert result.ok, result.summary()
    return result


# Measured 2026-11-25 (onnxruntime 1.32, onnxconverter-common 1.16) on the full-size export
# and on the tiny one, with the same failures: ORT's converter 66 / 49 Casts (4 Cast->Cast
# pairs on the full one), onnxconverter-common 58 Casts on the tiny one. The full-size
# conversions took 68 s and 63 s of CI; the tiny ones 32 s and 26 s.
@pytest.mark.parametrize(
    "converter",
    [
        pytest.param(
            onnxruntime_converter,
            id="onnxruntime",
            marks=pytest.mark.xfail(
                strict=True,
                reason="loads in ONNX Runtime, but onnx.checker: 'Nodes in a graph must be "
                "topologically sorted' (graph_input_cast_1 before /Slice)",
            ),
        ),
        pytest.param(
            onnxconverter_common,
            id="onnxconverter-common",
            marks=pytest.mark.xfail(
                strict=True,
                reason="ONNX Runtime refuses it: 'Type (tensor(float16)) of output arg "
                "(/Cast_7_output_0) of node (/Cast_7) does not match expected type "
                "(tensor(float))'; onnx.checker: /SequenceAt in the Loop reads a value "
                "not yet produced",
            ),
        ),
    ],
)
def test_parity_fp16_other_converters_on_kokoro(converter, tiny_export) -> None:
    original = load_model(tiny_export.path)
    converted = quietly(converter, load_model(tiny_export.path))
    found = audit(converted, original)
    assert found, found.summary()
