"""parity.core.inputs: tokenizing phonemes, rejecting bad ids, the fixture set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parity.core.config import default_inputs
from parity.core.errors import ParityError
from parity.core.inputs import (
    CONTEXT_SYMBOLS,
    STYLE_STD,
    check_ids,
    check_style,
    load_input_set,
    make_styles,
    tokenize,
)
from parity.core.spec import load_config
from parity.judge.tolerances import STYLE_STD_SAMPLING

VOCAB = load_config()["vocab"]
FIXTURES = default_inputs()


def test_tokenize_adds_the_boundary_tokens() -> None:
    ids = tokenize("ðə", VOCAB)
    assert ids.dtype == np.int64
    assert ids.tolist() == [[0, VOCAB["ð"], VOCAB["ə"], 0]]


@pytest.mark.parametrize(
    ("phonemes", "message"),
    [
        pytest.param("", "empty string", id="empty"),
        pytest.param(
            "həlˈO 5", "'5' .* at position 6 is not in Kokoro's vocab", id="unknown-symbol"
        ),
        pytest.param(
            "ə" * (CONTEXT_SYMBOLS + 1),
            "511 symbols is over Kokoro's context of 510",
            id="over-510",
        ),
    ],
)
def test_bad_phonemes_are_one_clear_line(phonemes: str, message: str) -> None:
    with pytest.raises(ParityError, match=message) as raised:
        tokenize(phonemes, VOCAB)
    assert "\n" not in str(raised.value)


def test_exactly_510_symbols_is_accepted() -> None:
    assert tokenize("ə" * CONTEXT_SYMBOLS, VOCAB).shape == (1, 512)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        pytest.param([[0, 7, 0]], "id 7 at position 1 is outside Kokoro's vocab", id="unused-id"),
        pytest.param([[0, 178, 0]], "id 178 at position 1", id="past-the-table"),
        pytest.param([[0, -1, 0]], "id -1", id="negative"),
        pytest.param([[0] * 513], "513 positions is over Kokoro's 512", id="too-long"),
    ],
)
def test_bad_token_ids_are_refused(ids: list[list[int]], message: str) -> None:
    with pytest.raises(ParityError, match=message):
        check_ids(np.asarray(ids, dtype=np.int64), VOCAB)


def test_style_must_be_256_finite_floats() -> None:
    assert check_style(np.zeros(256)).shape == (1, 256)
    with pytest.raises(ParityError, match="256 finite floats"):
        check_style(np.full((1, 256), np.nan))
    with pytest.raises(ParityError, match="256 finite floats"):
        check_style(np.zeros((1, 128)))


def test_fixture_set_covers_one_token_a_sentence_and_the_context_limit() -> None:
    inputs = load_input_set(FIXTURES)
    lengths = {name: inputs.case(name, VOCAB).input_ids.shape[1] for name in inputs.cases}
    assert lengths == {"one-token": 3, "sentence": 50, "context-limit": CONTEXT_SYMBOLS + 2}
    for name in inputs.calibration:
        tokenize(inputs.phonemes[name], VOCAB)


def test_fixture_styles_are_the_seeded_ones() -> None:
    """styles.npy is regenerated only on purpose: it must equal what its seed gives."""
    stored = np.load(FIXTURES / "styles.npy")
    assert np.array_equal(stored, make_styles(len(stored)))
    assert abs(float(stored.std()) - STYLE_STD) < STYLE_STD_SAMPLING


def test_missing_fixture_folder_names_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ParityError, match="--parity-inputs"):
        load_input_set(tmp_path)


def test_held_out_set_is_apart_from_what_decisions_are_made_on() -> None:
    """At least 8 held-out sentences, of varied length and punctuation, none of them used
    to select or calibrate, every one speakable in Kokoro's vocab."""
    inputs = load_input_set(FIXTURES)
    assert len(inputs.held_out) >= 8
    assert not set(inputs.held_out) & {*inputs.selection, *inputs.calibration}
    texts = [inputs.phonemes[key] for key in inputs.held_out]
    for text in texts:
        tokenize(text, VOCAB)
    assert min(map(len, texts)) < 10
    assert max(map(len, texts)) > 150
    assert set(",;:!?…—“()") <= set("".join(texts))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"held_out": ["sentence"]}, "'sentence' .* is both held out and used for selection"),
        ({"selection": ["nowhere"]}, "selection in .* names 'nowhere', which is not under"),
    ],
    ids=["overlap", "missing"],
)
def test_a_held_out_set_that_is_not_apart_is_refused(tmp_path: Path, change, message) -> None:
    import json
    import shutil

    document = json.loads((FIXTURES / "phonemes.json").read_text("utf-8"))
    (tmp_path / "phonemes.json").write_text(json.dumps({**document, **change}), "utf-8")
    shutil.copy(FIXTURES / "styles.npy", tmp_path / "styles.npy")
    with pytest.raises(ParityError, match=message):
        load_input_set(tmp_path)
