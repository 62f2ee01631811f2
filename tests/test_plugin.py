"""The pytest plugin as a user meets it: options, marker, figures, one-line errors."""

from __future__ import annotations

import pytest


def test_options_are_offered_under_one_prefix(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*--parity-preset*", "*--kokoro-checkpoint*", "*--parity-cache-dir*", "*--parity-inputs*"]
    )


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.parity:*"])


def test_what_times_something_is_marked_timing(pytester: pytest.Pytester) -> None:
    """A parallel run leaves out by marker what would skip on its workers anyway."""
    pytester.makepyfile(
        """
        def test_timed(require_timing):
            pass

        def test_benchmarked(parity_benchmarking):
            pass

        def test_plain():
            pass
        """
    )
    # test_benchmarked also leaves a run that does not time (parity.pytest_plugin.requirements)
    pytester.runpytest("-m", "timing").assert_outcomes(passed=1, deselected=2)
    pytester.runpytest("-m", "not timing").assert_outcomes(passed=1, deselected=2)
    timed = pytester.runpytest("-m", "timing", "--benchmark-enable")
    timed.assert_outcomes(passed=2, deselected=1)


def test_recorded_figures_reach_the_terminal_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_measures(parity_record):
            parity_record.add("demo", "rms_rel 1e-6 on 3 cases")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*parity figures*", "demo:", "  rms_rel 1e-6 on 3 cases"])


def test_bad_input_in_a_fixture_is_reported_as_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_needs_inputs(parity_inputs):
            pass
        """
    )
    result = pytester.runpytest(f"--parity-inputs={pytester.path / 'nowhere'}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["ParityError: inputs: *nowhere/phonemes.json not found*"])
    assert "def load_input_set" not in result.stdout.str()


def test_checkpoint_from_the_environment_reaches_the_recipe(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARITY_KOKORO_CHECKPOINT", "/models/kokoro.pth")
    pytester.makepyfile(
        """
        def test_recipe(parity_config):
            assert parity_config.spec.checkpoint == "/models/kokoro.pth"
            assert parity_config.spec.preset == "tiny"
        """
    )
    pytester.runpytest("--parity-preset=tiny").assert_outcomes(passed=1)


def test_k_selects_only_the_marked_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mixed="""
        import pytest

        @pytest.mark.parity
        def test_parity_one():
            pass

        def test_other():
            pass
        """
    )
    result = pytester.runpytest("-k", "parity", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_parity_one*"])
    assert "test_other" not in result.stdout.str()


def test_recovered_weights_refuse_a_second_source_of_weights(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--parity-weights=recovered", "--parity-preset=tiny")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*weights=recovered is the full-size trained model*"])


def test_recovered_weights_speak_the_cases_in_trained_voices(
    pytester: pytest.Pytester, parity_config
) -> None:
    pytester.makepyfile(
        """
        def test_styles(parity_inputs, kokoro_spec):
            from parity.builders.voices import load_voices
            voices = load_voices()
            case = parity_inputs.case("sentence", voices.vocab)
            assert kokoro_spec.checkpoint.endswith(".pth")
            assert (case.style == voices.style("jf_gongitsune", len(case.phonemes))).all()
        """
    )
    pytester.runpytest(
        "--parity-weights=recovered",
        f"--parity-inputs={parity_config.inputs_dir}",
        f"--parity-cache-dir={parity_config.cache_root}",
    ).assert_outcomes(passed=1)


def test_harness_checks_join_the_main_job_only_when_what_they_cover_changed(
    pytester: pytest.Pytester,
) -> None:
    """A ``harness`` test joins ``-k parity`` once what it covers changed since it last
    passed here; ``make test`` (everything) runs it always; ``landscape`` never joins."""
    source = """
        import pytest

        @pytest.mark.harness("core/errors.py")
        def test_planted_fault_is_found():
            assert {outcome}

        @pytest.mark.landscape
        def test_other_tool_fails():
            pass
        """
    pytester.makepyfile(test_selfcheck=source.format(outcome="True"))
    pytester.runpytest("-k", "parity").assert_outcomes(deselected=2)  # never ran here: CI's
    pytester.runpytest().assert_outcomes(passed=2)  # make test runs both and records the pass
    pytester.runpytest("-k", "parity").assert_outcomes(deselected=2)  # unchanged since
    pytester.makepyfile(test_selfcheck=source.format(outcome="False"))
    pytester.runpytest("-k", "parity").assert_outcomes(failed=1, deselected=1)  # changed
    pytester.runpytest("-k", "parity").assert_outcomes(failed=1, deselected=1)  # still failing
    pytester.makepyfile(test_selfcheck=source.format(outcome="True  # fixed"))
    pytester.runpytest("-k", "parity").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest("-k", "parity").assert_outcomes(deselected=2)


def test_a_landscape_test_that_names_what_it_covers_rejoins_when_a_named_file_changed(
    pytester: pytest.Pytester,
) -> None:
    """``landscape(files=...)`` (the client tests, the signed-int8 trap) stays out of
    ``-k parity`` until a file it names changes; then the main job runs it once."""
    pytester.makepyfile(
        test_client="""
        import pytest

        @pytest.mark.landscape(files=("recipe.json",))
        def test_client_speaks_the_shipped_file():
            pass
        """
    )
    pytester.makefile(".json", recipe='{"mode": "qdq"}')
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.runpytest("-k", "parity").assert_outcomes(deselected=1)
    pytester.makefile(".json", recipe='{"mode": "dynamic"}')
    pytester.runpytest("-k", "parity").assert_outcomes(passed=1)
    pytester.runpytest("-k", "parity").assert_outcomes(deselected=1)


def test_harness_digest_covers_the_named_modules(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import shutil
    from pathlib import Path

    import parity.core.memo
    from parity.core.memo import source_digest

    before, untouched = (
        source_digest(("core/errors.py",), ()),
        source_digest(("builders/model.py",), ()),
    )
    copy = tmp_path / "source"
    shutil.copytree(
        Path(parity.core.memo.__file__).parents[1],
        copy,
        ignore=shutil.ignore_patterns("node_modules"),
    )
    (copy / "core/errors.py").write_text((copy / "core/errors.py").read_text() + "# changed\n")
    monkeypatch.setattr(parity.core.memo, "_HERE", copy)
    assert source_digest(("core/errors.py",), ()) != before
    assert source_digest(("builders/model.py",), ()) == untouched


def test_loading_the_plugin_and_the_cli_imports_no_torch(tmp_path) -> None:
    """Every pytest run in a user's repository loads the plugin, whatever it tests: loading it
    (and printing ``parity --help``) imports neither torch nor ONNX Runtime."""
    import subprocess
    import sys

    (tmp_path / "test_modules.py").write_text(
        "import sys\n\n"
        "def test_nothing_heavy_was_imported():\n"
        "    heavy = {'torch', 'onnxruntime'} & set(sys.modules)\n"
        "    assert not heavy, heavy\n"
    )
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        "kokoro-parity"
        in subprocess.run(
            [sys.executable, "-m", "pytest", "--version", "--version"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    ), "the plugin is not registered, so this run would prove nothing"
    assert ran.returncode == 0, ran.stdout + ran.stderr
    cli = (
        "import sys\n"
        "from parity.cli import build_parser\n"
        "parser = build_parser()\n"
        "parser.format_help()\n"
        "print(sorted({'torch', 'onnxruntime'} & set(sys.modules)))\n"
    )
    imported = subprocess.run(
        [sys.executable, "-c", cli], capture_output=True, text=True, check=True
    ).stdout
    assert imported.strip() == "[]", imported
