"""A token whose duration sits at a rounding boundary: the staged check excuses its move only
where the tolerance has a ``duration_margin`` and both sides lie within it, then judges the rest
with timing forced to PyTorch's. Planted in the tiny preset's export, on the duration before its
``Round``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from parity.builders.forced_timing import duration_chain
from parity.judge.comparators import TokenMove
from parity.judge.tolerances import FP32

pytestmark = pytest.mark.harness(
    "builders/forced_timing.py", "judge/checks.py", "judge/comparators.py", "judge/forcing.py"
)

PAST_BOUNDARY = 0.01  # how far the planted duration lands beyond the boundary, in frames


@pytest.mark.parametrize(
    ("move", "margin", "excused"),
    [
        pytest.param(TokenMove(1, "a", 6, 5, (5.505, 5.46)), 0.06, True, id="at-the-boundary"),
        pytest.param(TokenMove(1, "a", 6, 5, (5.505, 5.46)), 0.0, False, id="no-margin"),
        pytest.param(TokenMove(1, "a", 5, 6, (5.2, 5.51)), 0.06, False, id="far-from-it"),
        pytest.param(TokenMove(1, "a", 5, 6, (5.49, 5.7)), 0.06, False, id="drifted-past-it"),
        pytest.param(TokenMove(1, "a", 5, 7, (5.49, 6.51)), 0.06, False, id="two-frames"),
        pytest.param(TokenMove(1, "a", 6, 5), 0.06, False, id="unrounded-unknown"),
    ],
)
def test_a_move_is_excused_only_at_the_boundary(move, margin, excused) -> None:
    assert move.at_rounding_boundary(margin) is excused


@pytest.fixture(scope="module")
def tiny(parity_cache, parity_inputs, tmp_path_factory):
    """The tiny preset's PyTorch model, its float32 export, a request and PyTorch's durations
    before rounding for it."""
    from parity.builders.export import export_cached
    from parity.builders.model import build_model
    from parity.core.memo import RunStore
    from parity.core.spec import KokoroSpec
    from parity.judge.checks import torch_reference

    spec = KokoroSpec(preset="tiny")
    model = build_model(spec)
    exported = export_cached(parity_cache, spec, model)  # type: ignore[arg-type]
    assert exported.ok, exported.error_line
    request = parity_inputs.case("sentence", model.vocab)
    reference, _, unrounded = torch_reference(model, request, RunStore(None))
    assert unrounded is not None
    # PyTorch's rounding of what we read is what it spoke: the capture reads kokoro's sum.
    assert np.array_equal(np.maximum(np.round(unrounded), 1), reference.durations.reshape(-1))
    return model, exported.path, request, unrounded, tmp_path_factory.mktemp("boundary")


def planted(source: Path, out: Path, offset: np.ndarray) -> Path:
    """``source`` with ``offset`` (frames per token) added to its durations before ``Round``."""
    model = onnx.load(str(source))
    chain = duration_chain(model.graph)
    assert chain is not None
    name = chain.unrounded
    round_node = next(n for n in model.graph.node if n.op_type == "Round" and n.input[0] == name)
    model.graph.initializer.append(numpy_helper.from_array(offset.astype(np.float32), "plant"))
    model.graph.node.append(helper.make_node("Add", [name, "plant"], ["planted"], name="/plant"))
    round_node.input[0] = "planted"
    onnx.save(model, str(out))
    return out


def nearest_boundary(unrounded: np.ndarray) -> tuple[int, float]:
    """The token closest to a rounding boundary (past one frame, where clamping rules) and
    the shift that carries it ``PAST_BOUNDARY`` beyond it."""
    distance = np.where(unrounded > 1.5, np.abs(unrounded % 1 - 0.5), np.inf)
    token = int(np.argmin(distance))
    boundary = np.floor(unrounded[token]) + 0.5
    beyond = boundary + (PAST_BOUNDARY if unrounded[token] < boundary else -PAST_BOUNDARY)
    return token, float(beyond - unrounded[token])


@pytest.mark.parametrize("kind", ["at-the-boundary", "a-frame-away"])
def test_the_staged_check_excuses_a_move_at_the_boundary_and_forces_the_rest(
    tiny, parity_runs, kind
) -> None:
    from parity.judge.checks import check_against_pytorch
    from parity.judge.forcing import ForcingSession

    model, path, request, unrounded, folder = tiny
    token, shift = nearest_boundary(unrounded)
    if kind == "a-frame-away":  # the same token, a whole frame on: no rounding made that move
        shift += float(np.sign(shift))
    offset = np.zeros(unrounded.size, np.float32)
    offset[token] = shift
    file = planted(path, folder / f"{kind}.onnx", offset)
    # Wide enough for this token's distance to its boundary; FP32 itself has none.
    margin = 2 * (abs(shift) if kind == "at-the-boundary" else abs(shift) - 1)
    session = ForcingSession(file, runs=parity_runs)
    strict = check_against_pytorch(model, session, request, FP32)
    loose = check_against_pytorch(model, session, request, replace(FP32, duration_margin=margin))

    assert strict.durations is not None
    assert [move.position for move in strict.durations.moved] == [token]
    assert not strict
    assert "unrounded" in strict.failures[0]  # the failure gives both durations before rounding
    assert strict.forced is None  # stopped at the durations
    assert not strict.timing_forced
    if kind == "a-frame-away":
        assert not loose
        assert loose.forced is None
        return
    assert loose, loose.report()
    assert loose.timing_forced
    assert any("rounding boundary" in note for note in loose.notes)
    assert loose.forced is not None  # judged on PyTorch's timing: the generator is untouched
    assert loose.forced.error is not None
    assert loose.forced.error.rms_rel <= FP32.forced_rms_rel
