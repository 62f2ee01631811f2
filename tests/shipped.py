"""The files we ship (the stored recipes) and the published int8 beside them, for the client
tests: each real client must load and speak every one of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from parity.judge.quality import VariantQuality, compare_variant
from parity.judge.runners import KokoroOutput
from parity.judge.tolerances import VariantTolerance
from parity.judge.variant_registry import PEER
from parity.search.optimize import load_recipe

RECIPES = sorted((Path(__file__).parent.parent / "fixtures" / "recipes").glob("*.json"))
# The published int8 first, then each stored recipe once (the CPU and wasm targets may agree).
SHIPPED = [PEER, *dict.fromkeys(load_recipe(path)[0] for path in RECIPES)]
# What builds, loads and judges the shipped files, for the client tests' ``landscape`` markers:
# they rejoin ``pytest -k parity`` when one of these changed since they last passed here.
SHIPPED_MODULES = (
    "builders/quantize.py",
    "builders/calibration.py",
    "builders/int8_weights.py",
    "builders/weights.py",
    "judge/quality.py",
    "judge/runners.py",
    "judge/tolerances",
    "judge/variant_registry.py",
    "search/optimize.py",
)
SHIPPED_FILES = ("fixtures/recipes", "tests/shipped.py")


def shipped_path(name: str, kokoro_trained, trained_variant: Callable[..., object]) -> Path:
    """The file shipped as ``name``: the published int8, or a stored recipe built (cached)
    from the trained float32."""
    if name == PEER:
        return kokoro_trained[0].int8_path
    recipe = next(load_recipe(path)[2] for path in RECIPES if load_recipe(path)[0] == name)
    return trained_variant(f"{name} (shipped)", recipe).path


def judge_through_client(
    label: str,
    reference: list[KokoroOutput],
    outputs: list[KokoroOutput],
    requests: list,
    size_ratio: float,
    tolerance: VariantTolerance,
) -> VariantQuality:
    """A shipped file's audio through a client against float32's through the same client:
    clients return no durations, so timing is aligned by DTW, and the verdict must say so."""
    quality = compare_variant(
        label, reference, outputs, requests, size_ratio=size_ratio, tolerance=tolerance
    )
    assert quality.timing == "dtw"
    return quality
