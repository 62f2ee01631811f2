"""The variant registry (parity.judge.variant_registry): one record per int8 variant, and every
gate, bench and search that names variants takes them from it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from parity.core.errors import ParityError
from parity.judge import variant_registry as registry
from parity.judge.variant_registry import (
    PEER,
    VARIANTS,
    Variant,
    built_variants,
    checked,
    variant,
)

pytestmark = pytest.mark.harness("judge/variant_registry.py", "search/optimize.py")

TESTS = Path(__file__).parent
# The test modules that parametrize over the registry, and the helpers they import.
GATE_MODULES = ("test_quantize_parity.py", "test_bench.py", "test_int8_trap.py", "trained_gates.py")


def test_each_variant_is_one_record_with_a_unique_name_and_one_peer() -> None:
    names = [entry.name for entry in VARIANTS]
    assert len(names) == len(set(names))
    assert [entry.name for entry in VARIANTS if entry.peer] == [PEER]
    assert not variant(PEER).built_here  # the peer is a file made elsewhere
    assert all(entry.recipe is not None for entry in built_variants())


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(lambda v: (*v, v[1]), "'dynamic-uint8' is named twice", id="twice"),
        pytest.param(lambda v: (*v, replace(v[1], name="fp32")), "'fp32' is a name", id="baseline"),
        pytest.param(
            lambda v: (*v, replace(v[1], name="my-parity")),
            "'my-parity' is a name",
            id="k-would-select-it",
        ),
        pytest.param(lambda v: (*v, replace(v[1], name="x", peer=True)), "2 peers", id="two-peers"),
        pytest.param(
            lambda v: (replace(v[0], recipe=v[1].recipe), *v[1:]), "the peer is a file", id="peer"
        ),
        pytest.param(
            lambda v: (*v, replace(v[1], name="y", recipe=None)),
            "a variant other than the peer has no",
            id="no-recipe",
        ),
    ],
)
def test_a_registry_no_run_could_use_is_refused_in_one_line(change, problem) -> None:
    with pytest.raises(ParityError, match=f"variant registry: {problem}"):
        checked(change(VARIANTS))


def test_an_unknown_variant_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(ParityError, match="no int8 variant named 'nope'; the registry has") as e:
        variant("nope")
    assert "\n" not in str(e.value)
    assert PEER in str(e.value)


def _planted(name: str, *, main_job: bool) -> Variant:
    base = variant("dynamic-uint8")
    return Variant(
        name=name,
        tolerance=base.tolerance,
        speed=base.speed,
        recipe=base.recipe,
        main_job=main_job,
    )


def test_the_search_builds_every_registered_variant(monkeypatch) -> None:
    from parity.search.optimize import search_candidates

    monkeypatch.setattr(registry, "VARIANTS", (*VARIANTS, _planted("planted", main_job=True)))
    candidates = search_candidates()
    assert "planted" in candidates
    assert {entry.name for entry in built_variants()} <= set(candidates)


def test_a_variant_added_to_the_registry_is_picked_up_by_every_gate(pytester) -> None:
    """One entry, no other edit: the quality gate and the benches of the main job collect the
    main-job variant, the landscape gates the landscape one, and neither crosses over."""
    for module in GATE_MODULES:
        shutil.copy(TESTS / module, pytester.path / module)
    pytester.makeconftest(
        """
        from parity.judge import variant_registry as registry
        from parity.judge.variant_registry import Variant, variant

        base = variant("dynamic-uint8")
        registry.VARIANTS = (
            *registry.VARIANTS,
            *(
                Variant(name=name, tolerance=base.tolerance, speed=base.speed,
                        recipe=base.recipe, main_job=main)
                for name, main in (("planted-main", True), ("planted-landscape", False))
            ),
        )
        """
    )
    # A subprocess: in-process, the copies would clash with the suite's own modules of the same
    # names, and the planted entries would stay in the registry for the tests after this one.
    # --benchmark-enable: without a benchmark flag the timed cases leave the run (test_bench).
    argv = ("--collect-only", "-q", "--benchmark-enable")
    collected = pytester.runpytest_subprocess(*argv).outlines
    ids = [line for line in collected if "::" in line]

    def named(test: str, variant_name: str) -> list[str]:
        return [line for line in ids if f"::{test}[" in line and variant_name in line]

    assert named("test_parity_int8_variant_of_trained_kokoro_within_its_gates", "planted-main")
    assert named("test_bench_latency", "planted-main")
    assert named("test_bench_latency", "planted-landscape")  # benched, as the trap is
    assert named("test_landscape_variant_sounds_within_its_gates", "planted-landscape")
    assert named("test_landscape_variant_bench_within_its_speed_bound", "planted-landscape")
    assert not named("test_parity_int8_variant_of_trained_kokoro_within_its_gates", "landscape")
    assert not named("test_landscape_variant_sounds_within_its_gates", "planted-main")
