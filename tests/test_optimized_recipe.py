"""The recipes ``parity optimize`` chose (fixtures/recipes/), rebuilt and gated every commit:
at least as clean as the published int8 and faster than float32 on their target."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.bench import measure, speed_ratios
from parity.optimize import PEER, TARGETS, hear, load_recipe

pytestmark = pytest.mark.parity

RECIPES = sorted((Path(__file__).parent.parent / "fixtures" / "recipes").glob("*.json"))


@pytest.fixture(scope="module", params=RECIPES, ids=lambda path: path.stem)
def chosen(request, trained_variant):
    name, target, recipe = load_recipe(request.param)
    return name, target, trained_variant(f"{name} (chosen for {target})", recipe)


def test_parity_chosen_recipe_sounds_as_clean_as_the_published_int8(
    chosen, bench_models, trained_requests, trained_reference_audio, parity_record
) -> None:
    name, target, built = chosen
    ours = hear(
        name,
        built.recipe.label(),
        built.path,
        size_ratio=built.size_ratio,
        reference=trained_reference_audio,
        requests=trained_requests,
    )
    peer_path = bench_models(PEER)
    peer = hear(
        PEER,
        "kokoro-onnx int8",
        peer_path,
        size_ratio=peer_path.stat().st_size / bench_models("fp32").stat().st_size,
        reference=trained_reference_audio,
        requests=trained_requests,
    )
    parity_record.add(f"chosen recipe ({target})", ours.line())
    parity_record.add(f"chosen recipe ({target})", peer.line())
    assert ours.cleaner_than(peer), f"{ours.line()}\nagainst {peer.line()}"


def test_parity_chosen_recipe_is_faster_than_fp32_on_its_target(
    chosen, bench_models, trained_requests, parity_timing, parity_benchmarking, parity_record
) -> None:
    name, target, built = chosen
    provider = TARGETS[target]  # type: ignore[index]
    if parity_timing is not None:
        pytest.skip(parity_timing)
    if provider != "cpu" and parity_benchmarking is not None:
        pytest.skip(f"{provider}: {parity_benchmarking}")
    if provider == "wasm":
        from parity.wasm import wasm_unavailable

        if wasm_unavailable():
            pytest.skip(wasm_unavailable())
    models = {"fp32": bench_models("fp32"), PEER: bench_models(PEER), name: built.path}
    records = measure(models, provider, trained_requests[:1], repeats=3)
    ratios = speed_ratios(records, "fp32")
    parity_record.add(
        f"chosen recipe ({target})",
        f"{name}: x{ratios[name]:.2f} of fp32's time on {provider} (peer x{ratios[PEER]:.2f})",
    )
    assert ratios[name] < 1.0, f"{name} takes x{ratios[name]:.2f} of fp32's time on {provider}"
