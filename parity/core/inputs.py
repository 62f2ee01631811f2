"""Model inputs: phoneme strings to token ids with Kokoro's vocab, style vectors, fixture sets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from parity.core.errors import ParityError

# KModel's ALBERT has 512 positions; two of them hold the boundary token 0.
CONTEXT_SYMBOLS = 510
STYLE_DIM = 256
# Trained Kokoro voice packs have mean -0.004 and std 0.153 (af_heart); seeded styles match that.
STYLE_STD = 0.15
STYLE_SEED = 20_261_125
PHONEMES_FILE = "phonemes.json"
STYLES_FILE = "styles.npy"


@dataclass(frozen=True)
class KokoroInput:
    """One synthesis request: token ids with their boundary zeros, a style vector, a speed."""

    name: str
    phonemes: str
    input_ids: np.ndarray = field(repr=False)  # int64 [1, L]
    style: np.ndarray = field(repr=False)  # float32 [1, 256]
    speed: float = 1.0

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbol each position stands for, boundary tokens included (for reports)."""
        return ("<bos>", *self.phonemes, "<eos>")


def tokenize(phonemes: str, vocab: Mapping[str, int]) -> np.ndarray:
    """Phoneme string to int64 ids [1, L], with the boundary 0 on each side, as KModel does.

    Unlike KModel, an unknown symbol is an error rather than silently dropped.
    """
    if not phonemes:
        raise ParityError("phonemes: empty string; give at least one phoneme symbol")
    if len(phonemes) > CONTEXT_SYMBOLS:
        raise ParityError(
            f"phonemes: {len(phonemes)} symbols is over Kokoro's context of {CONTEXT_SYMBOLS} "
            "(512 positions less the two boundary tokens); split the text into chunks"
        )
    ids = [0]
    for position, symbol in enumerate(phonemes):
        if symbol not in vocab:
            raise ParityError(
                f"phonemes: {symbol!r} (U+{ord(symbol):04X}) at position {position} is not in "
                f"Kokoro's vocab of {len(vocab)} symbols; write it in Kokoro's IPA"
            )
        ids.append(vocab[symbol])
    ids.append(0)
    return np.asarray([ids], dtype=np.int64)


def check_ids(input_ids: np.ndarray, vocab: Mapping[str, int]) -> None:
    """Reject token ids that no vocab symbol (nor the boundary 0) has, and over-long sequences."""
    ids = np.asarray(input_ids)
    if ids.ndim != 2 or ids.shape[0] != 1 or ids.dtype != np.int64:
        raise ParityError(f"input_ids: expected int64 [1, L], got {ids.dtype} {list(ids.shape)}")
    if ids.shape[1] > CONTEXT_SYMBOLS + 2:
        raise ParityError(
            f"input_ids: {ids.shape[1]} positions is over Kokoro's 512; split the text into chunks"
        )
    known = {0, *vocab.values()}
    unknown = [(int(i), int(v)) for i, v in enumerate(ids[0]) if int(v) not in known]
    if unknown:
        position, value = unknown[0]
        raise ParityError(
            f"input_ids: id {value} at position {position} is outside Kokoro's vocab "
            f"(ids 0..{max(known)}, {len(known)} in use); {len(unknown)} such id(s) in all"
        )


def check_style(style: np.ndarray) -> np.ndarray:
    array = np.asarray(style, dtype=np.float32)
    if array.shape == (STYLE_DIM,):
        array = array[None, :]
    if array.shape != (1, STYLE_DIM) or not np.isfinite(array).all():
        raise ParityError(f"style: expected 256 finite floats as [1, 256], got {list(array.shape)}")
    return array


def make_styles(count: int, seed: int = STYLE_SEED) -> np.ndarray:
    """``count`` seeded style vectors [count, 256] with the spread of trained voice packs."""
    return np.random.default_rng(seed).normal(0.0, STYLE_STD, (count, STYLE_DIM)).astype(np.float32)


@dataclass(frozen=True)
class InputSet:
    """The hand-written phoneme strings and seeded styles the package ships
    (``parity/data/inputs``)."""

    phonemes: dict[str, str]
    styles: np.ndarray
    cases: dict[str, tuple[str, int]]  # case name -> (phoneme key, style row)
    calibration: tuple[str, ...]
    # Quality decisions (sweeps, recipe searches) are made on ``selection``; ``held_out``
    # only judges, so a claim measured on it was tuned on none of its requests.
    selection: tuple[str, ...] = ()
    held_out: tuple[str, ...] = ()
    # Voices that speak the held-out sentences in turn, and a sentence's own language's
    # voices (a Spanish sentence in ef_dora): names of trained voice packs.
    held_out_speakers: tuple[str, ...] = ()
    voices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Voices that speak the selection sentences in turn: none of the held-out English ones, so
    # a choice is claimed on voices it never heard either.
    selection_speakers: tuple[str, ...] = ()

    def case(self, name: str, vocab: Mapping[str, int]) -> KokoroInput:
        phoneme_key, style_row = self.cases[name]
        text = self.phonemes[phoneme_key]
        return KokoroInput(
            name, text, tokenize(text, vocab), self.styles[style_row : style_row + 1]
        )

    def case_for(self, key: str, vocab: Mapping[str, int], style_row: int = 0) -> KokoroInput:
        """Phoneme entry ``key`` as a request, with one of the seeded styles."""
        text = self.phonemes[key]
        return KokoroInput(key, text, tokenize(text, vocab), self.styles[style_row : style_row + 1])

    def sentences(self, vocab: Mapping[str, int], keys: tuple[str, ...]) -> list[KokoroInput]:
        """Every (sentence, style) pair of ``keys`` x all styles, named ``key/style-N``."""
        return [
            KokoroInput(
                f"{key}/style-{row}",
                self.phonemes[key],
                tokenize(self.phonemes[key], vocab),
                self.styles[row : row + 1],
            )
            for key in keys
            for row in range(len(self.styles))
        ]


def load_input_set(directory: Path) -> InputSet:
    """Read ``phonemes.json`` and ``styles.npy`` from a fixtures directory."""
    phonemes_path, styles_path = directory / PHONEMES_FILE, directory / STYLES_FILE
    for path in (phonemes_path, styles_path):
        if not path.is_file():
            raise ParityError(
                f"inputs: {path} not found; point --parity-inputs (pytest) or --inputs (CLI) "
                f"at a folder with {PHONEMES_FILE} and {STYLES_FILE}"
            )
    try:
        document = json.loads(phonemes_path.read_text("utf-8"))
        styles = np.load(styles_path)
    except (ValueError, OSError) as error:
        raise ParityError(f"inputs: cannot read {directory}: {error}") from error
    if styles.ndim != 2 or styles.shape[1] != STYLE_DIM:
        raise ParityError(f"inputs: {styles_path} has shape {styles.shape}, expected [N, 256]")
    phonemes = dict(document["phonemes"])
    cases = {name: (key, int(row)) for name, (key, row) in document["cases"].items()}
    for name, (key, row) in cases.items():
        if key not in phonemes or not 0 <= row < len(styles):
            raise ParityError(f"inputs: case {name!r} in {phonemes_path} names a missing entry")
    calibration = tuple(document["calibration"])
    selection = tuple(document.get("selection", calibration))
    held_out = tuple(document.get("held_out", ()))
    for listed, keys in (("calibration", calibration), ("selection", selection),
                         ("held_out", held_out)):  # fmt: skip
        missing = [key for key in keys if key not in phonemes]
        if missing:
            raise ParityError(
                f"inputs: {listed} in {phonemes_path} names {missing[0]!r}, which is not under "
                "'phonemes'; add it there or remove it from the list"
            )
    tuned = set(selection) | set(calibration)
    if tuned & set(held_out):
        raise ParityError(
            f"inputs: {sorted(tuned & set(held_out))[0]!r} in {phonemes_path} is both held out "
            "and used for selection or calibration; a held-out request must judge only"
        )
    speakers = tuple(document.get("held_out_speakers", ()))
    selection_speakers = tuple(document.get("selection_speakers", ()))
    voices = {key: tuple(names) for key, names in document.get("voices", {}).items()}
    unknown = [key for key in voices if key not in phonemes]
    if unknown:
        raise ParityError(
            f"inputs: voices in {phonemes_path} names {unknown[0]!r}, which is not under "
            "'phonemes'; add it there or remove it from 'voices'"
        )
    return InputSet(
        phonemes,
        styles.astype(np.float32),
        cases,
        calibration,
        selection,
        held_out,
        speakers,
        voices,
        selection_speakers,
    )
