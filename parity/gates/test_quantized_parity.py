"""Quantized files against their float32 reference (the run's float32 file, else PyTorch) on
the held-out requests, in the trained voices: timing, sound with timing removed, static and
loudness, each beside the reference's own noise floor, after the file's output gain is
measured and taken out (``parity.judge.verdict``)."""

from __future__ import annotations

import pytest

from parity.judge.verdict import judge_quantized_file

pytestmark = [pytest.mark.parity, pytest.mark.judges("quantized")]


def test_parity_quantized_file_within_the_published_int8s_bounds(
    parity_subject, parity_files, parity_inputs, parity_config, parity_runs, parity_record
) -> None:
    from parity.builders.voices import load_voices

    requests = load_voices().held_out(
        parity_inputs,
        parity_config.held_out_voices,
        installed_only="node" in parity_config.without,
    )
    reference = parity_files.reference_for(parity_subject)
    quality, gain = judge_quantized_file(
        parity_subject.name,
        parity_files.model(parity_subject),
        parity_files.path(parity_subject),
        requests,
        reference=reference,
        runs=parity_runs,
    )
    against = reference.name if reference is not None else "PyTorch float32"
    parity_record.add(
        "quantized files", f"{parity_subject.name} against {against}: output {gain.describe()}"
    )
    parity_record.add("quantized files", quality.summary(), quality=quality)
    assert quality.timing == "forced", "the file's durations could not be forced"
    assert quality, quality.summary()
