"""The recipes ``parity optimize`` chose (fixtures/recipes/), rebuilt and gated every commit:
at least as clean as the published int8 and no larger, and faster than float32 on their
target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parity.builders.quantize import QuantRecipe
from parity.judge.quality import AXES
from parity.judge.tolerances import (
    CHOSEN_RECIPE_MAX_SPEED_RATIO,
    CHOSEN_RECIPE_TIMED_ON,
    UNGATED,
)
from parity.judge.variant_registry import PEER
from parity.measure.bench import measure_cached, speed_ratios
from parity.search.optimize import CandidateResult, as_clean, load_recipe

pytestmark = pytest.mark.parity

RECIPE_DIR = Path(__file__).parent.parent / "fixtures" / "recipes"


def _distinct() -> dict[tuple[str, QuantRecipe], list[str]]:
    """Each distinct recipe once, with the targets that chose it (CPU and WASM may agree)."""
    chosen: dict[tuple[str, QuantRecipe], list[str]] = {}
    for path in sorted(RECIPE_DIR.glob("*.json")):
        name, target, recipe = load_recipe(path)
        chosen.setdefault((name, recipe), []).append(target)
    return chosen


RECIPES = _distinct()
TARGETED = [(key, target) for key, targets in RECIPES.items() for target in targets]


def _build(trained_variant, key: tuple[str, QuantRecipe]):
    name, recipe = key
    return trained_variant(f"{name} (chosen for {'+'.join(RECIPES[key])})", recipe)


def _judged(trained_verdict, trained_variant, bench_models, key) -> tuple[Any, Any]:
    """The chosen recipe's and the published int8's figures on the held-out requests."""
    built = _build(trained_variant, key)
    ours = trained_verdict(key[0], built.path, UNGATED)  # the comparison is the gate
    return ours, trained_verdict(PEER, bench_models(PEER), UNGATED)


def _row(figures: Any, label: str) -> CandidateResult:
    """Its means as a search row (no worst request: ``cleaner_than`` then compares means)."""
    return CandidateResult(figures.variant, label, figures.size_ratio, axes=figures.axes())


@pytest.mark.parametrize("key", RECIPES, ids=lambda key: "+".join(RECIPES[key]))
def test_parity_chosen_recipe_sounds_as_clean_as_the_published_int8_and_is_no_larger(
    key, trained_variant, bench_models, trained_verdict, trained_floor, parity_record
) -> None:
    """Chosen on the selection sentences; judged here on the held-out ones, on every axis's
    mean, a difference within the axis's noise floor counting as equal."""
    figures, published = _judged(trained_verdict, trained_variant, bench_models, key)
    ours = _row(figures, key[1].label())
    peer = _row(published, "kokoro-onnx int8")
    parity_record.add("chosen recipes", peer.line())
    parity_record.add("chosen recipes", ours.line())  # last: the line the report shows
    assert ours.cleaner_than(peer, trained_floor), (
        f"{ours.line()}\nagainst {peer.line()}\nfloor {trained_floor.line()}"
    )
    assert ours.size_ratio <= peer.size_ratio, f"{ours.line()}\nagainst {peer.line()}"


@pytest.mark.parametrize("key", RECIPES, ids=lambda key: "+".join(RECIPES[key]))
def test_parity_chosen_recipe_is_as_clean_as_the_published_int8_on_its_worst_request(
    key, trained_variant, bench_models, trained_verdict, trained_floor, parity_record
) -> None:
    """Each axis on its worst held-out request against the published int8's worst, within
    the worst request's noise floor: a recipe can win every mean and still ruin one voice."""
    figures, published = _judged(trained_verdict, trained_variant, bench_models, key)
    ours, peer = figures.worst(), published.worst()
    where = {axis: figures.worst_request(axis) for axis in AXES}
    parity_record.add("chosen recipes", f"{PEER}, worst request: {peer.line()}")
    parity_record.add("chosen recipes", f"{key[0]}, worst request: {ours.line()}")
    assert as_clean(ours, peer, trained_floor.worst), (
        f"worst requests {where}\n{ours.line()}\nagainst {peer.line()}\n"
        f"floor {trained_floor.line()}"
    )


@pytest.mark.parametrize(("key", "target"), TARGETED, ids=[t for _, t in TARGETED])
def test_parity_chosen_recipe_keeps_its_speed_over_fp32_on_its_target(
    key,
    target,
    trained_variant,
    bench_models,
    speed_plan,
    require_timing,
    parity_record,
    parity_runs,
) -> None:
    """On the CPU, one thread: two threads on a 2-core host read the neighbours' load
    (``CHOSEN_RECIPE_TIMED_ON``); the full form there, as the CPU's other gates."""
    provider = CHOSEN_RECIPE_TIMED_ON[target]
    require_timing(provider)
    name = key[0]
    built = _build(trained_variant, key)
    models = {"fp32": bench_models("fp32"), PEER: bench_models(PEER), name: built.path}
    plan = speed_plan(provider, full=target == "cpu")
    records = measure_cached(
        models, provider, plan.requests, repeats=plan.repeats, runs=parity_runs
    )
    ratios = speed_ratios(records, "fp32")
    parity_record.add(
        "chosen recipes",
        f"{name}: x{ratios[name]:.2f} of fp32's time on {provider} (peer x{ratios[PEER]:.2f})"
        + (f" ({plan.reduced})" if plan.reduced else ""),
    )
    assert ratios[name] <= CHOSEN_RECIPE_MAX_SPEED_RATIO, (
        f"{name} takes x{ratios[name]:.2f} of fp32's time on {provider}"
    )
