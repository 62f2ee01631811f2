"""Quantized files against PyTorch float32 on the held-out requests, in the trained voices:
timing, sound with timing removed, static and loudness, each beside PyTorch's own noise floor,
after the file's output gain is measured and taken out (``parity.judge.verdict``)."""

from __future__ import annotations

import pytest

from parity.judge.verdict import judge_quantized_file

pytestmark = [pytest.mark.parity, pytest.mark.judges("quantized")]


def test_parity_quantized_file_within_the_published_int8s_bounds(
    parity_subject, parity_files, parity_inputs, parity_config, parity_runs, parity_record
) -> None:
    from parity.builders.voices import load_voices

    requests = load_voices().speak(
        parity_inputs, parity_inputs.held_out, parity_config.held_out_voices
    )
    quality, gain = judge_quantized_file(
        parity_subject.name,
        parity_files.model(parity_subject),
        parity_files.path(parity_subject),
        requests,
        runs=parity_runs,
    )
    parity_record.add("quantized files", f"{parity_subject.name}: output {gain.describe()}")
    parity_record.add("quantized files", quality.summary(), quality=quality)
    assert quality.timing == "forced", "the file's durations could not be forced"
    assert quality, quality.summary()
