"""The int8 variants of the trained model, one record each: how it is built, the bounds it is
held to, and which runs gate it.

Adding or tuning a variant is one entry in ``VARIANTS``. The quality and speed gates, the
benches and the recipe search parametrize over it, and the report shows whatever they record
under the variant's name (tests/test_variant_registry.py adds one and watches each gate pick
it up); the bounds' measurements are in ``parity.judge.tolerances.variants``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from parity.builders.quantize import TRAINED_EXCLUDE_SCOPES, QuantRecipe
from parity.core.errors import ParityError
from parity.core.spec import BASELINE
from parity.judge.tolerances import (
    DYNAMIC_INT8_PER_CHANNEL,
    DYNAMIC_SPEED,
    DYNAMIC_UINT8,
    PUBLISHED_INT8,
    SLOW_TRAP_SPEED,
    STATIC_INT8,
    STATIC_SPEED,
)
from parity.judge.tolerances.variants import SpeedBound, VariantTolerance

__all__ = [
    "PEER",
    "VARIANTS",
    "Variant",
    "built_variants",
    "checked",
    "variant",
]


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One int8 variant of the trained Kokoro-82M."""

    name: str  # the id its gates, benches, report rows and search rows carry
    tolerance: VariantTolerance  # its verdict's bounds against float32
    speed: SpeedBound  # its time over float32's, one run
    recipe: QuantRecipe | None = None  # how it is built; None: a file made elsewhere
    main_job: bool = True  # gated by ``pytest -k parity``; else a landscape case (make test)
    peer: bool = False  # the published int8 that ours are measured beside

    @property
    def built_here(self) -> bool:
        return self.recipe is not None


VARIANTS: tuple[Variant, ...] = (
    # kokoro-onnx's int8 of the same weights, recovered offline (parity.builders.weights).
    Variant(name="published", tolerance=PUBLISHED_INT8, speed=DYNAMIC_SPEED, peer=True),
    # One per mode of ONNX Runtime's quantizer, each with the measured exclusion list.
    Variant(
        name="dynamic-uint8",
        tolerance=DYNAMIC_UINT8,
        speed=DYNAMIC_SPEED,
        recipe=QuantRecipe(exclude_scopes=TRAINED_EXCLUDE_SCOPES),
    ),
    Variant(
        name="qdq",
        tolerance=STATIC_INT8,
        speed=STATIC_SPEED,
        recipe=QuantRecipe(mode="qdq", weight_type="int8", exclude_scopes=TRAINED_EXCLUDE_SCOPES),
    ),
    Variant(
        name="qoperator",
        tolerance=STATIC_INT8,
        speed=STATIC_SPEED,
        recipe=QuantRecipe(
            mode="qoperator", weight_type="int8", exclude_scopes=TRAINED_EXCLUDE_SCOPES
        ),
    ),
    # The signed-int8 trap: signed int8 weights per channel send ConvInteger to a slow path on
    # this CPU (2.7x to 4x float32's time, docs/latency.md). A fact about ONNX Runtime, gated
    # by make test, and by -k parity when its code changed.
    Variant(
        name="dynamic-int8-per-channel",
        tolerance=DYNAMIC_INT8_PER_CHANNEL,
        speed=SLOW_TRAP_SPEED,
        recipe=QuantRecipe(
            weight_type="int8", per_channel=True, exclude_scopes=TRAINED_EXCLUDE_SCOPES
        ),
        main_job=False,
    ),
)


def checked(variants: Sequence[Variant]) -> str:
    """The peer's name, once the registry is one a run can use: unique names, none the
    baseline's or holding "parity" (which -k parity would select), exactly one peer, made
    elsewhere, and every other variant built here."""
    names = [entry.name for entry in variants]
    twice = sorted({name for name in names if names.count(name) > 1})
    odd = [name for name in names if name == BASELINE or "parity" in name]
    peers = [entry for entry in variants if entry.peer]
    problem = (
        f"{twice[0]!r} is named twice" if twice
        else f"{odd[0]!r} is a name a variant cannot take" if odd
        else f"{len(peers)} peers; exactly one variant is the peer" if len(peers) != 1
        else "the peer is a file made elsewhere; it has no recipe" if peers[0].built_here
        else "a variant other than the peer has no recipe"
        if any(not entry.peer and not entry.built_here for entry in variants)
        else None
    )  # fmt: skip
    if problem is not None:
        raise ParityError(f"variant registry: {problem}")
    return peers[0].name


PEER = checked(VARIANTS)


def variant(name: str) -> Variant:
    """The registry's record named ``name``; one line naming the known ones otherwise."""
    for entry in VARIANTS:
        if entry.name == name:
            return entry
    known = ", ".join(entry.name for entry in VARIANTS)
    raise ParityError(f"no int8 variant named {name!r}; the registry has {known}")


def built_variants(*, main_job: bool | None = None) -> tuple[Variant, ...]:
    """The variants the harness builds itself, in registry order; ``main_job`` picks the
    main job's (True) or the landscape cases (False)."""
    return tuple(
        entry
        for entry in VARIANTS
        if entry.built_here and (main_job is None or entry.main_job == main_job)
    )
