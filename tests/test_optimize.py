"""parity.search.optimize on a small graph: the table, failed candidates, the choice, the recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from parity.builders.quantize import QuantBuild, QuantRecipe, quantize_model
from parity.core.config import default_inputs
from parity.core.errors import ParityError
from parity.core.inputs import load_input_set
from parity.core.spec import load_config
from parity.judge.variant_registry import PEER
from parity.search.optimize import load_recipe, search, write_recipe

from kokoro_graphs import tiny_kokoro

FIXTURES = default_inputs()
KERNEL = np.random.default_rng(1).normal(0, 0.3, (1, 8, 3)).astype(np.float32)
PEER_NOISE = np.random.default_rng(2).normal(0, 0.1, KERNEL.shape).astype(np.float32)


@pytest.fixture(scope="module")
def requests() -> list:
    inputs = load_input_set(FIXTURES)
    return inputs.sentences(load_config("full")["vocab"], ("greeting",))[:2]


def _search(tmp_path: Path, requests: list, candidates: dict[str, QuantRecipe]):
    source = tiny_kokoro(tmp_path / "fp32.onnx", KERNEL)
    # The peer: the same model with its last layer's weights off by noise of a third of their
    # size, worse than int8 on every axis (a plain 20% gain would move loudness only).
    peer = tiny_kokoro(tmp_path / "peer.onnx", KERNEL + PEER_NOISE)

    def build(name: str, recipe: QuantRecipe) -> QuantBuild:
        if name == "broken":
            raise RuntimeError("calibration ran out of memory\nsecond line")
        return quantize_model(source, tmp_path / f"{name}.onnx", recipe)

    # Timing a graph this small says nothing: the choice here is about quality alone.
    return search(
        source,
        peer,
        "cpu",
        requests,
        build,
        candidates=candidates,
        repeats=1,
        max_speed_ratio=float("inf"),
    )


def test_search_keeps_failures_in_the_table_and_chooses_a_clean_candidate(
    tmp_path, requests
) -> None:
    candidates = {
        "dynamic-uint8": QuantRecipe(exclude_scopes=()),
        "broken": QuantRecipe(mode="qdq", exclude_scopes=()),
    }
    result = _search(tmp_path, requests, candidates)
    rows = {row.name: row for row in result.rows}
    assert rows["broken"].error == "RuntimeError: calibration ran out of memory"
    assert np.isnan(rows["broken"].speed_ratio)
    assert rows["dynamic-uint8"].cleaner_than(result.peer, result.floor)
    assert result.peer.aligned_mel > rows["dynamic-uint8"].aligned_mel
    assert result.chosen == "dynamic-uint8"
    assert rows["dynamic-uint8"].speed_ratio > 0

    result.write(tmp_path / "out")
    table = (tmp_path / "out" / "optimize.csv").read_text().splitlines()
    assert table[0].endswith(",cleaner_than_peer,chosen")
    assert len(table) == 4  # two candidates and the peer
    assert json.loads((tmp_path / "out" / "optimize.json").read_text())["chosen"] == "dynamic-uint8"
    assert (tmp_path / "out" / "optimize.png").read_bytes()[:4] == b"\x89PNG"

    recipe_path = tmp_path / "recipes" / "cpu.json"
    write_recipe(recipe_path, "dynamic-uint8", candidates["dynamic-uint8"], result)
    assert load_recipe(recipe_path) == ("dynamic-uint8", "cpu", candidates["dynamic-uint8"])


def test_nothing_is_chosen_when_no_candidate_is_as_clean_as_the_peer(tmp_path, requests) -> None:
    result = _search(tmp_path, requests, {"broken": QuantRecipe()})
    assert result.chosen is None
    assert "chosen: nothing" in result.summary()


def test_recipes_and_targets_are_checked(tmp_path, requests) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    with pytest.raises(ParityError, match="cannot read the recipe"):
        load_recipe(bad)
    with pytest.raises(ParityError, match="unknown target 'gpu'"):
        search(bad, bad, "gpu", requests, lambda n, r: None)  # type: ignore[arg-type]


def test_cleaner_than_gives_no_slack_without_a_floor_on_the_ratio_axis_too() -> None:
    """Without a measured floor every axis compares as it stands; the >6 kHz axis is a ratio,
    so its 'no change' is 1, not 0 (which once granted it a whole unit of slack)."""
    from parity.judge.quality import Axes
    from parity.search.optimize import CandidateResult

    def row(name: str, hf_ratio: float) -> CandidateResult:
        return CandidateResult(name, "", axes=Axes(0.0, 0.0, 0.1, 1.0, 0.0, hf_ratio, 0.0))

    assert not row("ours", 1.5).cleaner_than(row("peer", 1.0))
    assert row("ours", 1.0).cleaner_than(row("peer", 1.0))


def test_the_choice_is_the_fastest_candidate_that_beats_the_peer_on_every_axis() -> None:
    from parity.judge.quality import Axes, NoiseFloor
    from parity.search.optimize import CandidateResult, choose

    def row(name: str, size: float, speed: float, mel: float) -> CandidateResult:
        return CandidateResult(name, name, size, speed, Axes(0.0, 0.0, mel, 6.0, 0.0, 1.0, 0.0))

    peer = row("published", 0.28, 1.09, 0.24)
    slack = Axes(0.0, 0.0, 0.03, 0.9, 0.0, 1.0, 0.0)
    floor = NoiseFloor(slack, slack)
    rows = [
        row("fast-but-large", 0.59, 0.80, 0.25),
        row("small", 0.26, 0.85, 0.25),
        row("small-and-noisy", 0.26, 0.70, 0.40),
        row("small-but-slow", 0.20, 1.02, 0.20),
    ]
    assert choose(rows, peer, floor) == "small"
    assert choose(rows[:1], peer, floor) is None  # no size advantage, no choice
    assert choose(rows, peer, floor, max_speed_ratio=2.0) == "small"
    assert choose(rows[3:], peer, floor, max_speed_ratio=2.0) == "small-but-slow"


def test_a_recipe_with_int8_weight_storage_reads_back_as_written(tmp_path) -> None:
    from parity.search.optimize import CandidateResult, OptimizeResult, search_candidates

    name = "qdq-resblocks-float-int8-weights"
    recipe = search_candidates()[name]
    assert recipe.int8_weights_except  # the candidate keeps some weights float32
    row, peer = CandidateResult(name, name), CandidateResult(PEER, "peer")
    path = tmp_path / "cpu.json"
    write_recipe(path, name, recipe, OptimizeResult("cpu", "cpu", (row,), peer, name, None))
    assert load_recipe(path) == (name, "cpu", recipe)


def test_a_candidate_as_clean_on_the_mean_but_worse_on_its_worst_request_is_not_chosen() -> None:
    """The search judges as the verdict does: the mean and the worst request, each against the
    peer's, each with its own noise floor as slack."""
    from parity.judge.quality import Axes, NoiseFloor
    from parity.search.optimize import CandidateResult, choose

    def axes(floor_rise_db: float) -> Axes:
        return Axes(0.0, 0.0, 0.1, 1.0, floor_rise_db, 1.0, 0.0)

    def row(name: str, worst_floor: float, speed: float) -> CandidateResult:
        return CandidateResult(name, "", 0.2, speed, axes(0.0), worst=axes(worst_floor))

    peer = row("peer", 2.4, 1.0)
    floor = NoiseFloor(mean=axes(0.0), worst=axes(0.1))
    fast_but_one_bad_request, slower = row("fast", 5.8, 0.6), row("slower", 2.9, 0.7)
    assert not fast_but_one_bad_request.cleaner_than(peer, floor)
    assert slower.cleaner_than(peer, floor)  # 2.9 - 0.5 dB resolution is within 2.4 + 0.1
    assert choose([fast_but_one_bad_request, slower], peer, floor) == "slower"
    assert CandidateResult("no worst", "", 0.2, 0.5, axes(0.0)).cleaner_than(peer, floor)
