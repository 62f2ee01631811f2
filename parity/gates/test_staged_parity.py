"""Staged parity: each float file (float32 and float16) in ONNX Runtime against PyTorch
float32, stage by stage, on the fixture inputs, by the bounds of its precision
(``parity.judge.checks``; FP32 and FP16 in ``parity.judge.tolerances``)."""

from __future__ import annotations

import pytest

from parity.judge.checks import check_against_pytorch
from parity.judge.verdict import staged_tolerance

pytestmark = [pytest.mark.parity, pytest.mark.judges("fp32", "fp16")]

SECTION = {"fp32": "fp32 parity", "fp16": "float16 parity"}


def _check(request, subject, files, config, record) -> None:
    result = check_against_pytorch(
        files.model(subject),
        files.forcing(subject),
        request,
        staged_tolerance(subject.precision, config.provider),
        max_gain_db=config.max_gain_db,
    )
    record.add(SECTION[subject.precision], f"{subject.name} {result.summary()}")
    assert result, result.report()


@pytest.mark.parametrize("case", ["one-token", "sentence", "context-limit"])
def test_parity_staged_onnxruntime_matches_pytorch(
    case, parity_subject, parity_files, parity_inputs, parity_config, parity_record
) -> None:
    """Same durations; generator inputs, source, its STFT and the forced generator within
    the rounding of the file's precision (on --parity-provider's backend, by its bounds);
    the output gain printed first."""
    model = parity_files.model(parity_subject)
    _check(
        parity_inputs.case(case, model.vocab),
        parity_subject,
        parity_files,
        parity_config,
        parity_record,
    )


def test_parity_staged_on_the_shortest_held_out_request(
    parity_subject, parity_files, parity_inputs, parity_config, parity_record
) -> None:
    """The same check on ``held-yes`` in its first held-out voice: a sentence no bound was
    chosen on, and the shortest, so make test can run the full model on WebGPU with it."""
    from parity.builders.voices import load_voices
    from parity.core.errors import ParityError

    shortest = parity_inputs.held_out[0]  # held-yes: the held-out set lists it first
    try:
        voices = load_voices()  # the "trained" extra: a project may go without it
    except ParityError as missing:
        pytest.skip(f"staged held-out: {missing}")
    spoken = [
        request
        for request in voices.held_out(parity_inputs, 1, installed_only=True)
        if request.name.startswith(f"{shortest}/")
    ]
    if not spoken:
        pytest.skip(
            f"staged held-out: the voice of {shortest} is not installed (the official packs "
            "come with kokoro-js's npm package: make setup)"
        )
    _check(spoken[0], parity_subject, parity_files, parity_config, parity_record)
