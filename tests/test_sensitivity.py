"""parity.search.sensitivity on a small graph, one layer planted to break under each transform."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from parity.core.config import default_inputs
from parity.core.errors import ParityError
from parity.core.inputs import load_input_set
from parity.core.plots import draw
from parity.core.spec import load_config
from parity.search.sensitivity import (
    SweepDrift,
    SweepResult,
    SweepRow,
    SweepSettings,
    check_baseline,
    check_group,
    judge_sweep,
    load_baseline,
    scope_of,
    sweep,
    write_baseline,
)
from parity.search.sensitivity.sweeper import _bisect

from kokoro_graphs import sweep_session_args, tiny_kokoro

FIXTURES = default_inputs()


def _relative_rms(reference: np.ndarray, candidate: np.ndarray) -> float:
    return float(np.linalg.norm(candidate - reference) / np.linalg.norm(reference))


@pytest.fixture(scope="module")
def requests() -> list:
    inputs = load_input_set(FIXTURES)
    return inputs.sentences(load_config("full")["vocab"], inputs.calibration)[:3]


def _outlier_kernel() -> np.ndarray:
    """Small weights plus a huge one on the silent channel: it changes nothing in float, but a
    per-tensor 8-bit step sized for it rounds every other weight to zero."""
    kernel = np.random.default_rng(1).normal(0, 0.3, (1, 8, 3)).astype(np.float32)
    kernel[0, 0, 0] = 200.0
    return kernel


def _huge_kernel() -> np.ndarray:
    """Weights near 1e5: beyond float16's 65504, and so are the sums they make."""
    return np.random.default_rng(1).normal(0, 1e5, (1, 8, 3)).astype(np.float32)


@pytest.mark.parametrize(
    ("transform", "fragile"),
    [("int8-dynamic", _outlier_kernel), ("int8-gemm", _outlier_kernel), ("fp16", _huge_kernel)],
    ids=["int8-outlier", "int8-gemm-outlier", "fp16-overflow"],
)
def test_sweep_names_the_planted_layer_first_and_keeps_it(
    tmp_path, requests, transform, fragile
) -> None:
    source = tiny_kokoro(tmp_path / "m.onnx", fragile())
    result = sweep(
        source, transform, requests, threshold=0.05, budget=0.05, loss=_relative_rms, depth=1
    )
    # /dec/ hurt, so it was split: its Conv b is named first and kept out, a is transformed.
    assert result.rows[0].scope == "/dec/b/"
    assert not result.rows[0].loss <= result.threshold
    assert result.excluded == ("/dec/b/",)
    # The GEMM rewrite takes convolutions only; the encoder's MatMul is no candidate for it.
    convs_only = transform == "int8-gemm"
    expected = {"/dec/a/", "/dec/b/"} | (set() if convs_only else {"/enc/"})
    assert {row.scope for row in result.rows} == expected
    assert result, result.summary()
    result.write(tmp_path / "out")
    table = (tmp_path / "out" / "sensitivity.csv").read_text().splitlines()
    assert table[0] == "scope,op_types,nodes,loss,static_db,moved_tokens,excluded"
    assert table[1].startswith("/dec/b/,Conv,1,")
    assert table[1].endswith(",True")


def test_bisection_finds_the_fewest_extra_exclusions() -> None:
    calls: list[int] = []

    def combined(extra: int) -> float:
        calls.append(extra)
        return 1.0 - 0.1 * extra

    assert _bisect(combined, 10, budget=0.55) == (5, pytest.approx(0.5))
    assert len(calls) <= 5  # log2(10) probes plus the first, not ten
    assert _bisect(lambda extra: 0.1, 10, budget=0.55) == (0, 0.1)


def test_scope_of_cuts_node_names_at_module_depth() -> None:
    name = "/decoder/decoder/generator/resblocks.2/convs1.0/Conv"
    assert scope_of(name, 2) == "/decoder/decoder/"
    assert scope_of(name, 4) == "/decoder/decoder/generator/resblocks.2/"
    assert scope_of(name, 9) == "/decoder/decoder/generator/resblocks.2/convs1.0/"


def test_sweep_refuses_unknown_transforms_and_empty_inputs(tmp_path, requests) -> None:
    source = tiny_kokoro(tmp_path / "m.onnx", _outlier_kernel())
    with pytest.raises(ParityError, match="unknown transform"):
        sweep(source, "int4", requests, threshold=0.1, budget=0.1)  # type: ignore[arg-type]
    with pytest.raises(ParityError, match="no requests"):
        sweep(source, "fp16", [], threshold=0.1, budget=0.1)


def test_cli_sensitivity_writes_the_table_and_names_the_layer(tmp_path, capsys) -> None:
    import json

    from parity.cli import main

    source = tiny_kokoro(tmp_path / "m.onnx", _outlier_kernel())
    out = tmp_path / "sweep"
    argv = ["sensitivity", str(source), "--transform", "int8-dynamic", "--out-dir", str(out)]
    assert main([*argv, "--depth", "1", "--requests", "statement", "--inputs", str(FIXTURES)]) == 0
    printed = capsys.readouterr().out
    assert "pre-processing: done" in printed
    result = json.loads((out / "sensitivity.json").read_text())
    assert result["rows"][0]["scope"] == "/dec/b/"
    assert result["excluded"] == ["/dec/b/"]
    assert result["passed"] is True
    assert sorted(p.name for p in out.iterdir()) == [
        "sensitivity.csv",
        "sensitivity.json",
        "sensitivity.png",
    ]


def test_cli_sensitivity_with_a_cache_reads_its_groups_back(tmp_path, capsys) -> None:
    """``--cache-dir``: the second sweep of the same model reads every group's figures back
    and decides the same."""
    import json

    from parity.cli import main

    source = tiny_kokoro(tmp_path / "m.onnx", _outlier_kernel())
    argv = ["sensitivity", str(source), "--transform", "int8-dynamic", "--depth", "1"]
    argv += ["--inputs", str(FIXTURES), "--cache-dir", str(tmp_path / "cache")]
    tables = []
    for run in ("first", "second"):
        assert (
            main([*argv, "--out-dir", str(tmp_path / run), "--json", str(tmp_path / f"{run}.json")])
            == 0
        )
        tables.append(json.loads((tmp_path / f"{run}.json").read_text()))
    err = capsys.readouterr().err
    assert "computed" in err.split("\n")[0]
    assert "runs-sweep" in err.strip().splitlines()[-1].split("read back")[1]
    assert tables[0]["rows"] == tables[1]["rows"]


BASELINE_SETTINGS = SweepSettings("int8-dynamic", threshold=0.05, budget=0.05, depth=1)


def _baseline(tmp_path: Path) -> tuple[Path, Path, list]:
    """A stored sweep of the planted model, as fixtures/baselines/ keeps them."""
    requests = BASELINE_SETTINGS.requests_from(load_input_set(FIXTURES))
    source = tiny_kokoro(tmp_path / "m.onnx", _outlier_kernel())
    path = tmp_path / "baselines" / "planted.json"
    write_baseline(path, BASELINE_SETTINGS, BASELINE_SETTINGS.run(source, requests))
    return path, source, requests


@pytest.mark.parametrize("full", [False, True], ids=["recheck", "full-sweep"])
def test_an_unchanged_model_holds_its_baseline(tmp_path, full) -> None:
    path, source, requests = _baseline(tmp_path)
    measured, drift = check_baseline(path, BASELINE_SETTINGS, source, requests, full=full)
    assert drift, drift.summary()
    assert drift.moved == drift.flipped == drift.added == drift.missing == ()
    if not full:  # the excluded group, the kept ones and the combined model: 4 builds, not 5
        assert measured.builds == 4
        assert measured.rows[0].scope == "/dec/b/"
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("full", [False, True], ids=["recheck", "full-sweep"])
def test_a_layer_that_stopped_hurting_is_named_as_drift(tmp_path, full) -> None:
    """The baseline kept /dec/b/ out; with a benign kernel there it no longer hurts, so the
    stored decision is stale and the check says where. A full sweep no longer splits /dec/
    at all, so there the groups themselves differ."""
    path, _, requests = _baseline(tmp_path)
    benign = np.random.default_rng(1).normal(0, 0.3, (1, 8, 3)).astype(np.float32)
    changed = tiny_kokoro(tmp_path / "changed.onnx", benign)
    _, drift = check_baseline(path, BASELINE_SETTINGS, changed, requests, full=full)
    assert not drift
    if full:
        assert (drift.added, drift.missing) == (("/dec/",), ("/dec/a/", "/dec/b/"))
        assert "/dec/b/ is gone" in drift.summary()
    else:
        assert drift.flipped == ("/dec/b/",)
        assert drift.moved[0].scope == "/dec/b/"
        assert drift.moved[0].measured < drift.moved[0].baseline
        assert "/dec/b/ crossed the threshold" in drift.summary()


def test_baselines_refuse_to_be_compared_blind(tmp_path) -> None:
    path, source, requests = _baseline(tmp_path)
    other = replace(BASELINE_SETTINGS, threshold=0.5)
    with pytest.raises(ParityError, match=r"measured with .* --parity-regen"):
        check_baseline(path, other, source, requests, full=False)
    with pytest.raises(ParityError, match=r"no baseline at .* --parity-regen"):
        load_baseline(tmp_path / "absent.json")
    path.write_text("{}")
    with pytest.raises(ParityError, match=r"unreadable .* regenerate"):
        load_baseline(path)


def test_a_plot_that_fails_to_draw_does_not_fail_the_run(tmp_path, caplog) -> None:
    def broken() -> NoReturn:
        raise RuntimeError("no fonts")

    assert draw(broken, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()
    assert "not drawn: RuntimeError: no fonts" in caplog.text


def test_sweep_stops_in_one_line_when_its_threshold_is_within_the_noise_floor(
    tmp_path, requests
) -> None:
    """A loss no group can be told from chaos by ranks nothing: the sweep says so instead."""
    source = tiny_kokoro(tmp_path / "m.onnx", _outlier_kernel())
    with pytest.raises(ParityError, match=r"threshold 0 is not above the loss's noise floor"):
        sweep(source, "int8-dynamic", requests, threshold=0.0, budget=0.05, depth=1)


def test_sweep_of_the_tiny_random_export_stops_and_says_its_floor_is_the_pipeline(
    parity_cache,
) -> None:
    """On random weights, the quantizer's graph rewriting alone (no node quantized) moves the
    chaotic audio past the threshold: no ranking can mean anything, and the sweep says so."""
    from parity.builders.export import export_cached
    from parity.builders.model import build_model
    from parity.builders.quantize import preprocessed_cached
    from parity.core.spec import KokoroSpec

    spec = KokoroSpec(preset="tiny")
    exported = export_cached(parity_cache, spec, build_model(spec))
    assert exported.path is not None
    source, _ = preprocessed_cached(parity_cache, exported.path)
    settings = SweepSettings("int8-dynamic")
    with pytest.raises(ParityError) as stopped:
        settings.run(source, settings.requests_from(load_input_set(FIXTURES)))
    message = str(stopped.value)
    assert "the threshold 0.3 is not above the loss's noise floor" in message
    assert "through the transform with no node transformed" in message
    assert "\n" not in message


def test_every_sentence_named_is_heard() -> None:
    inputs = load_input_set(FIXTURES)
    two = SweepSettings("int8-dynamic", sentences=("greeting", "question"), requests=2)
    names = [request.name for request in two.requests_from(inputs)]
    assert names == ["greeting/style-0", "question/style-0"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SweepSettings("int8-dynamic", sentences=("nope",)), "--requests 'nope' is not in"),
        (
            SweepSettings("int8-dynamic", sentences=("greeting", "question"), requests=1),
            "--request-count 1 for 2 sentences x 4 styles",
        ),
        (SweepSettings("int8-dynamic", requests=9), "--request-count 9 for 1 sentences x 4 styles"),
        (
            SweepSettings("int8-dynamic", sentences=("greeting", "question"), trained_voices=True),
            "--trained-voices speaks one sentence",
        ),
    ],
    ids=["unknown-sentence", "fewer-requests-than-sentences", "more-than-exist", "trained-two"],
)
def test_requests_that_would_drop_a_sentence_are_one_error_line(settings, message) -> None:
    with pytest.raises(ParityError, match=message) as error:
        settings.requests_from(load_input_set(FIXTURES))
    assert "\n" not in str(error.value)


# Loaded with -p into the sweep's session: the combined model measures over the budget, as
# when layers harmless alone add up past it and no exclusion brings it back.
_OVER_BUDGET_PLUGIN = """
import parity.search.sensitivity.sweeper as sweeper


def pytest_configure(config):
    sweeper._bisect = lambda combined, count, budget: (count, budget + 1.0)
"""


@pytest.mark.parametrize("over_budget", [False, True], ids=["within-budget", "over-budget"])
def test_the_sweep_session_fails_when_the_cli_would(
    pytester: pytest.Pytester, tmp_path: Path, over_budget: bool
) -> None:
    """``parity.search.sweep_items``: each group's item passes once its rows account for its
    nodes; the session's exit status follows ``judge_sweep``, as ``parity sensitivity``'s
    exit code does."""
    import json

    model = tiny_kokoro(tmp_path / "m.onnx", _outlier_kernel())
    pytester.makepyfile(over_budget=_OVER_BUDGET_PLUGIN)
    result = pytester.runpytest_subprocess(
        *sweep_session_args(model, tmp_path),
        f"--parity-sweep-out={tmp_path / 'sweep'}",
        *(["-p", "over_budget"] if over_budget else []),
    )
    result.assert_outcomes(passed=2)  # the groups /dec/ and /enc/ were each measured whole
    written = SweepResult.from_json(
        json.loads((tmp_path / "sweep" / "sensitivity.json").read_text())
    )
    assert bool(judge_sweep(written)) is not over_budget
    if over_budget:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            ["*FAILED: the combined model's loss 1.050 is over the budget 0.05*"]
        )
    else:
        assert result.ret == pytest.ExitCode.OK
        assert "FAILED:" not in result.stdout.str()


def test_a_sweep_verdict_names_each_failed_check() -> None:
    rows = (SweepRow("/dec/b/", ("/dec/b/Conv",), "Conv", 0.9),)
    over = SweepResult("int8-dynamic", rows, 0.3, 0.45, ("/dec/b/",), (), float("nan"), 3, 1.0)
    drift = SweepDrift(1, (), ("/dec/b/",), (), (), float("nan"), 0.45, 0.01)
    verdict = judge_sweep(over, drift)
    assert not verdict
    assert verdict.reasons[0] == (
        "the combined model's loss nan is over the budget 0.45 (1 of 1 groups kept out)"
    )
    assert "/dec/b/ crossed the threshold" in verdict.reasons[1]
    within = replace(over, combined_loss=0.2)
    assert judge_sweep(within)
    assert judge_sweep(within).line() == "the sweep holds"
    check = check_group("/dec/", ["/dec/a/Conv", "/dec/b/Conv"], [*rows, *rows])
    assert not check
    assert check.message() == (
        "sensitivity: the rows of group /dec/: 1 node(s) not measured (first: /dec/a/Conv); "
        "1 node(s) measured twice (first: /dec/b/Conv)"
    )
