"""The run report: one folder per run, a summary that names what failed first, a comparison."""

from __future__ import annotations

import json
import textwrap
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from parity.cli import main
from parity.core.config import default_inputs
from parity.core.errors import ParityError
from parity.judge.quality import VariantQuality
from parity.judge.tolerances import STATIC_INT8
from parity.measure.bench import LatencyRecord
from parity.report.run_diff import compare_reports
from parity.report.run_report import Gate, Report, load_report, write_report

TESTS = Path(__file__).parent
FIXTURES = default_inputs()

# A user's test module: an int8 variant of a small Kokoro-shaped graph, gated layer by layer
# (each layer's loss when quantized alone), and the variant's audio recorded for the report.
# With PLANT=1 layer /dec/b/ holds one outlier weight: the per-tensor step sized for it rounds
# every other weight of the layer to zero, so quantizing it is the planted mistake.
PLANTED_MODULE = textwrap.dedent(
    """
    import os

    import numpy as np
    import pytest
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from kokoro_graphs import tiny_kokoro
    from parity.core.inputs import load_input_set
    from parity.core.spec import load_config
    from parity.judge.runners import OrtRunner
    from parity.search.sensitivity import sweep

    THRESHOLD = 0.05


    def relative_rms(reference, candidate):
        return float(np.linalg.norm(candidate - reference) / np.linalg.norm(reference))


    def kernel():
        weights = np.random.default_rng(1).normal(0, 0.3, (1, 8, 3)).astype(np.float32)
        if os.environ.get("PLANT") == "1":
            weights[0, 0, 0] = 200.0
        return weights


    @pytest.mark.parametrize("variant", ["int8-dynamic"])
    def test_parity_variant_layers_within_threshold(variant, tmp_path, parity_record):
        inputs = load_input_set(__import__("pathlib").Path(os.environ["FIXTURES"]))
        requests = inputs.sentences(load_config("full")["vocab"], inputs.calibration)[:2]
        model = tiny_kokoro(tmp_path / "m.onnx", kernel())
        quantize_dynamic(model, tmp_path / "q.onnx", weight_type=QuantType.QUInt8)
        spoken = requests[0].name
        parity_record.audio("fp32", OrtRunner(model).infer(requests[0]).waveform, spoken=spoken)
        quantized = OrtRunner(tmp_path / "q.onnx").infer(requests[0]).waveform
        parity_record.audio(variant, quantized, spoken=spoken)
        result = sweep(
            model, variant, requests, threshold=THRESHOLD, budget=1.0, loss=relative_rms, depth=1
        )
        parity_record.add("sensitivity", result.summary(), sweep=result)
        worst = result.rows[0]
        assert worst.loss <= THRESHOLD, (
            f"{variant}: layer {worst.scope} loses {worst.loss:.3f} when quantized "
            f"(threshold {THRESHOLD})"
        )


    def test_parity_export_matches(parity_record):
        parity_record.add("fp32 parity", "rms_rel 1e-6", rms_rel=1e-6)
    """
)


@pytest.fixture
def two_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The module above run clean and planted, each with --parity-report (in a subprocess:
    numpy and matplotlib cannot be imported twice in one process)."""
    pytester.makepyfile(test_user=PLANTED_MODULE)
    monkeypatch.setenv("FIXTURES", str(FIXTURES))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    folders = []
    for plant, expected in (("0", {"passed": 2}), ("1", {"passed": 1, "failed": 1})):
        monkeypatch.setenv("PLANT", plant)
        folder = pytester.path / ("planted" if plant == "1" else "clean")
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--parity-report={folder}"
        )
        result.assert_outcomes(**expected)
        folders.append(folder)
    return folders[0], folders[1]


def test_report_names_the_planted_variant_and_layer_first(two_runs, capsys) -> None:
    clean, planted = two_runs
    summary = (planted / "summary.md").read_text()
    first = next(line for line in summary.splitlines() if line.startswith("**First failure:**"))
    assert "test_parity_variant_layers_within_threshold[int8-dynamic]" in first
    assert "int8-dynamic: layer /dec/b/ loses" in first
    rows = [line for line in summary.splitlines() if line.startswith("| `")]
    assert "[int8-dynamic]` | FAILED" in rows[0]
    assert "2 passed, 0 failed, 0 skipped: every gate passed" in (clean / "summary.md").read_text()

    report = json.loads((planted / "report.json").read_text())
    gate = next(g for g in report["gates"] if g["outcome"] == "failed")
    assert gate["figures"][0]["data"]["sweep"]["rows"][0]["scope"] == "/dec/b/"
    assert set(report["pictures"]) == {"mel.png", "sensitivity.png"}
    assert set(report["sounds"]) == {"fp32.wav", "int8-dynamic.wav"}
    with wave.open(str(planted / "int8-dynamic.wav")) as sound:
        assert (sound.getframerate(), sound.getsampwidth(), sound.getnchannels()) == (24000, 2, 1)
        assert sound.getnframes() > 0

    assert main(["report", "--compare", str(clean), str(planted)]) == 1
    lines = capsys.readouterr().out.splitlines()
    changes = [line for line in lines if line.startswith("- ")]
    assert changes[0].startswith("- WORSE: `test_user.py::test_parity_variant_layers")
    assert "outcome: passed -> failed" in changes[0]
    assert "layer /dec/b/ loses 1.000" in changes[0]
    # The clean sweep never split /dec/: the layer's row is new in the planted run.
    new_row = (
        "- new: `test_user.py::test_parity_variant_layers_within_threshold[int8-dynamic]` "
        "sensitivity:sweep.rows[/dec/b/].loss: (none) -> 1"
    )
    assert new_row in lines
    assert main(["report", "--compare", str(clean), str(clean)]) == 0
    assert "Nothing moved beyond noise" in capsys.readouterr().out


def test_workers_hand_their_plots_and_sounds_to_the_controller(pytester, monkeypatch) -> None:
    """Under pytest-xdist the report has what a serial run's has: the result objects and
    waveforms come back from the workers, not only their JSON."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_user=PLANTED_MODULE)
    monkeypatch.setenv("FIXTURES", str(FIXTURES))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("PLANT", "1")
    folder = pytester.path / "n2"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "load", f"--parity-report={folder}"
    )
    result.assert_outcomes(passed=1, failed=1)
    report = json.loads((folder / "report.json").read_text())
    assert set(report["pictures"]) == {"mel.png", "sensitivity.png"}
    assert set(report["sounds"]) == {"fp32.wav", "int8-dynamic.wav"}
    gate = next(g for g in report["gates"] if g["outcome"] == "failed")
    assert gate["figures"][0]["data"]["sweep"]["rows"][0]["scope"] == "/dec/b/"


def _quality(name: str, mel: float, failures: tuple[str, ...] = ()) -> VariantQuality:
    return VariantQuality(
        name,
        ("s/v",),
        "forced",
        (0.0,),
        (0.0,),
        (mel,),
        (mel,),
        (1.0,),
        (0.0,),
        (1.0,),
        (0.0,),
        0.3,
        STATIC_INT8,
        None,
        failures,
    )


def _latency(model: str, seconds: float) -> LatencyRecord:
    return LatencyRecord(model, "cpu", seconds, 2.0, 1000, 3, 0.05, seconds)


def test_the_speed_quality_scatter_pairs_each_variant_with_its_latency(tmp_path) -> None:
    objects = [
        _quality("qdq", 0.3),
        _quality("dynamic-uint8", 0.5, ("mean log-mel 0.5 > 0.45",)),
        *(_latency(m, t) for m, t in (("fp32", 1.0), ("qdq", 0.7), ("dynamic-uint8", 0.9))),
    ]
    written = write_report(Report((Gate("t::a", "passed", 0.1),)), tmp_path, objects)
    assert set(written.pictures) == {"latency.png", "speed-quality.png"}
    # Quality without any latency of the same run: no speed axis, so no scatter.
    written = write_report(Report(()), tmp_path / "no-timing", objects[:2])
    assert written.pictures == ()


def test_summary_rows_show_each_judgement_and_fold_quiet_cases() -> None:
    figure = {"section": "s", "line": "qdq: log-mel 0.51: ok", "data": {}}
    gates = (
        Gate("t.py::test_walk[a]", "passed", 0.5),
        Gate("t.py::test_variant", "passed", 2.0, None, (figure,)),
        Gate("t.py::test_walk[b]", "passed", 0.25),
        Gate("t.py::test_other_converter", "xfailed", 3.0, "checker: nodes not sorted"),
        Gate("t.py::test_gate", "failed", 1.0, "AssertionError: speed x1.2 > x1.0"),
        Gate("t.py::test_skipped", "skipped", 0.0, "no Node.js"),
    )
    rows = [line for line in Report(gates).summary_markdown().splitlines() if line[:3] == "| `"]
    assert rows == [
        "| `t.py::test_gate` | FAILED | 1.0 | AssertionError: speed x1.2 > x1.0 |",
        "| `t.py::test_walk[...]` | pass x2 | 0.8 | a, b |",
        "| `t.py::test_variant` | pass | 2.0 | qdq: log-mel 0.51: ok |",
        "| `t.py::test_other_converter` | xfail (known) | 3.0 | checker: nodes not sorted |",
    ]


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        (("passed", "passed"), "2 passed, 0 failed, 0 skipped: every gate passed"),
        (("passed", "skipped"), "1 passed, 0 failed, 1 skipped: no gate failed, but 1 did not"),
        (("passed", "skipped", "error"), "1 passed, 1 failed, 1 skipped.**"),
    ],
    ids=["all-passed", "one-skipped", "skipped-and-error"],
)
def test_summary_says_every_gate_passed_only_when_none_was_skipped(outcomes, verdict) -> None:
    gates = tuple(Gate(f"t.py::test_{i}", o, 0.1, f"why {i}") for i, o in enumerate(outcomes))
    summary = Report(gates).summary_markdown()
    assert verdict in summary
    if "skipped" in outcomes:
        assert "every gate passed" not in summary
        listed = summary.split("## Skipped", 1)[1]
        assert "`t.py::test_1`: why 1" in listed


def test_a_worker_hands_over_objects_and_plain_data_for_what_cannot_be_pickled() -> None:
    from parity.report.session import Recorder

    worker = Recorder()
    worker.current_test = "t::a"
    worker.add("latency", "fp32", record=_latency("fp32", 1.0))
    worker.add("odd", "a lambda", hook=lambda: None, value=0.5)
    worker.audio("fp32", np.ones(4), spoken="sentence/af_heart")
    controller = Recorder()
    controller.merge_bytes(worker.to_bytes())
    latency, odd = controller.measurements
    assert latency.data["record"] == _latency("fp32", 1.0)  # the object, for the plots
    assert odd.data["value"] == 0.5
    assert odd.data["hook"].startswith("<function")
    assert (odd.test, controller.spoken) == ("t::a", "sentence/af_heart")


def test_sounds_of_different_requests_are_refused_in_one_line() -> None:
    """The report sets the sounds side by side: they must all speak one request."""
    from parity.report.session import Recorder

    recorder = Recorder()
    recorder.audio("fp32", np.zeros(8), spoken="sentence/af_heart")
    recorder.audio("fp32", np.ones(8), spoken="sentence/af_heart")  # the first one is kept
    with pytest.raises(ParityError, match=r"'qdq' speaks 'numbers/af_heart' but .* speak"):
        recorder.audio("qdq", np.zeros(8), spoken="numbers/af_heart")
    assert list(recorder.sounds) == ["fp32"]
    assert not recorder.sounds["fp32"].any()


def test_compare_ignores_timing_noise_but_not_a_quality_step() -> None:
    def run(rtf: float, loss: float) -> Report:
        figures = ({"section": "s", "line": "", "data": {"rtf": rtf, "loss": loss}},)
        return Report((Gate("t::a", "passed", 1.0, None, figures),))

    moved = compare_reports(run(0.30, 0.100), run(0.36, 0.104))  # +20% time, +4% loss
    assert moved == []
    moved = compare_reports(run(0.30, 0.100), run(0.30, 0.120))
    assert [(change.what, change.worse) for change in moved] == [("s:loss", True)]


def _one_gate(**data: object) -> Report:
    return Report(
        (Gate("t::a", "passed", 1.0, None, ({"section": "s", "line": "", "data": data},)),)
    )


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        ({"durations_equal": 10}, {"durations_equal": 8}, "worse"),  # a count of successes
        ({"length_change": [-0.01]}, {"length_change": [0.02]}, "worse"),  # away from zero
        ({"length_change": [-0.02]}, {"length_change": [0.01]}, "better"),
        ({"tolerance": {"mean_mel": 0.4}}, {"tolerance": {"mean_mel": 0.5}}, "changed"),
        ({"tolerance": {"mean_mel": 0.45}}, {"tolerance": {"mean_mel": 0.46}}, "changed"),
        (
            {"record": {"model": "m", "seconds": 1.0}},
            {"record": {"model": "m", "seconds": 1.5}},
            "worse",
        ),
    ],
    ids=["benefit-falls", "signed-grows", "signed-shrinks", "setting", "setting-by-2%", "latency"],
)
def test_compare_judges_each_figure_by_what_its_rise_means(old, new, verdict) -> None:
    (change,) = compare_reports(_one_gate(**old), _one_gate(**new))
    assert change.verdict == verdict


def test_compare_leaves_out_build_times_timing_spreads_and_sign_flips() -> None:
    """How long a build took depends on the cache; a spread is noise about noise."""
    old = _one_gate(seconds=0.2, record={"model": "m", "seconds": 1.0, "spread": 0.03})
    new = _one_gate(seconds=12.0, record={"model": "m", "seconds": 1.0, "spread": 0.3})
    assert compare_reports(old, new) == []
    # A length change that flips sign at the same size is no change either.
    assert compare_reports(_one_gate(length_change=[-0.01]), _one_gate(length_change=[0.01])) == []


def test_compare_pairs_named_items_by_name_not_position() -> None:
    """A sweep whose ranking changed, and two records in one section: each figure is compared
    with the same group's or model's in the other run."""
    rows = [{"scope": "/a/", "loss": 0.5}, {"scope": "/b/", "loss": 0.1}]
    old = _one_gate(sweep={"rows": rows}, record={"model": "fp32", "seconds": 1.0})
    new = _one_gate(sweep={"rows": rows[::-1]}, record={"model": "fp32", "seconds": 1.0})
    assert compare_reports(old, new) == []
    records = ({"model": "fp32", "seconds": 1.0}, {"model": "qdq", "seconds": 0.5})
    two = Report(
        (
            Gate(
                "t::a",
                "passed",
                1.0,
                None,
                tuple({"section": "s", "line": "", "data": {"record": r}} for r in records),
            ),
        )
    )
    assert compare_reports(two, two) == []
    slower = Report(
        (
            replace(
                two.gates[0],
                figures=(
                    two.gates[0].figures[0],
                    {
                        "section": "s",
                        "line": "",
                        "data": {"record": {"model": "qdq", "seconds": 0.9}},
                    },
                ),
            ),
        )
    )
    (change,) = compare_reports(two, slower)
    assert (change.what, change.verdict) == ("s:record[qdq].seconds", "worse")


def test_a_sound_or_plot_that_cannot_be_made_does_not_fail_the_report(tmp_path, caplog) -> None:
    report = Report((Gate("t::a", "passed", 0.1),))
    sounds = {"fp32": np.zeros(2400, np.float32), "odd": np.array([np.nan], np.float32)}
    written = write_report(report, tmp_path, objects=[object()], sounds=sounds)
    assert json.loads((tmp_path / "report.json").read_text())["counts"] == {"passed": 1}
    assert (tmp_path / "summary.md").read_text().startswith("# Kokoro parity report")
    assert written.sounds == ("fp32.wav",)
    assert "sound odd not written: the waveform is not finite" in caplog.text
    assert "not drawn" in caplog.text  # the spectrogram of a NaN waveform


def test_a_folder_that_is_not_a_report_is_one_line(tmp_path, capsys) -> None:
    with pytest.raises(ParityError, match="is not a parity report"):
        load_report(tmp_path)
    assert main(["report", "--compare", str(tmp_path), str(tmp_path)]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_compare_counts_a_check_that_no_longer_runs_as_worse() -> None:
    """Comparing a full run with a narrower one (-k fp16) must not read "nothing moved"."""
    old = Report(
        (
            Gate("t::kept", "passed", 1.0, None, ()),
            Gate("t::skipped-now", "passed", 1.0, None, ()),
            Gate("t::dropped", "passed", 1.0, None, ()),
            Gate("t::was-skipped", "skipped", 0.0, "no node", ()),
        )
    )
    new = Report(
        (
            Gate("t::kept", "passed", 1.0, None, ()),
            Gate("t::skipped-now", "skipped", 0.0, "needs --benchmark-enable", ()),
        )
    )
    changes = {(c.test, c.new): c.verdict for c in compare_reports(old, new)}
    assert changes == {("t::skipped-now", "skipped"): "worse", ("t::dropped", "(not run)"): "worse"}
