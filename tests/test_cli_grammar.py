"""The command line's one grammar (docs/options.md), walked over every subcommand: inputs
positional, ``-o/--output`` for a file, ``--out-dir`` for a folder, one ``--requests``
selector, ``--threads`` and ``--json`` wherever a model runs; exit codes 0/1/2/3; earlier
spellings work with one deprecation line."""

from __future__ import annotations

import argparse
import json

import pytest
from test_options import COMMANDS

from parity.cli import (
    EXIT_BAD_INPUT,
    EXIT_GATE_FAILED,
    EXIT_INTERNAL_ERROR,
    EXIT_PASSED,
    build_parser,
    main,
)
from parity.core.config import CACHES, RUNS_A_MODEL, default_inputs
from parity.core.ort_session import effective_threads, use_threads

# What a positional may hold: the files and folders a command reads.
INPUTS = {"model", "input", "models", "folder"}
# The commands that speak phoneme entries, each through --requests.
SPEAKS = {"compare", "bench", "profile", "sensitivity", "optimize"}
EARLIER = ("--out", "--case", "--sentence", "--sentences")


def _shown(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if action.help != argparse.SUPPRESS]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_speaks_the_one_grammar(command: str) -> None:
    parser = COMMANDS[command]
    if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
        return  # a group (``weights``): its subcommands are walked themselves
    shown = _shown(parser)
    flags = {flag for action in shown for flag in action.option_strings}
    positional = {action.dest for action in shown if not action.option_strings}
    assert positional <= INPUTS, f"parity {command}: positional outputs {positional - INPUTS}"
    for action in shown:
        if action.dest == "output":
            assert action.option_strings == ["-o", "--output"], action.option_strings
        if action.dest == "out_dir":
            assert action.option_strings == ["--out-dir"], action.option_strings
        if action.dest == "json":
            assert action.metavar == "OUT.json"
    assert not flags & set(EARLIER), f"parity {command} shows an earlier spelling"
    assert ("--requests" in flags) == (command in SPEAKS), command
    if command in RUNS_A_MODEL:
        assert {"--threads", "--json"} <= flags, f"parity {command} runs a model"
    # Every command that runs a model but the two that time keeps a cache.
    assert ("--cache-dir" in flags) == (command in CACHES), command
    assert set(RUNS_A_MODEL) - set(CACHES) == {"bench", "profile"}


def test_the_grammar_walk_sees_a_positional_output() -> None:
    """The walk fails on what it exists to catch: an output given as a second positional."""
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    positional = {a.dest for a in _shown(parser) if not a.option_strings}
    assert positional - INPUTS == {"output"}


@pytest.mark.parametrize(
    ("argv", "new", "dest", "value"),
    [
        pytest.param(
            ["report", "--compare", "a", "b", "--out", "x.md"], "-o/--output", "output", "x.md",
            id="out",
        ),
        pytest.param(
            ["compare", "m.onnx", "--case", "sentence"], "--requests", "requests", ["sentence"],
            id="case",
        ),
        pytest.param(
            ["bench", "m.onnx", "--sentence", "greeting"], "--requests", "requests", ["greeting"],
            id="sentence",
        ),
        pytest.param(
            ["profile", "m.onnx", "--sentences", "a,b"], "--requests", "requests", ["a,b"],
            id="sentences",
        ),
        pytest.param(
            ["sensitivity", "m.onnx", "--transform", "fp16", "--out", "d"], "--out-dir",
            "out_dir", "d", id="dir",
        ),
    ],
)  # fmt: skip
def test_an_earlier_spelling_still_parses_with_one_deprecation_line(
    argv, new, dest, value, capsys
) -> None:
    args = build_parser().parse_args(argv)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("parity: ")
    assert f"deprecated; use {new}" in line
    assert getattr(args, dest) == value


def test_an_output_given_the_earlier_way_is_still_written(tmp_path, capsys) -> None:
    """``parity fp16 IN OUT`` still works for one release, and says what replaces it."""
    from parity.cli.grammar import output_of

    args = build_parser().parse_args(["fp16", "in.onnx", str(tmp_path / "out.onnx")])
    assert output_of(args) == str(tmp_path / "out.onnx")
    assert "use -o" in capsys.readouterr().err


def test_exit_0_passed_and_2_bad_input(tmp_path, capsys) -> None:
    """0: the command did what it was asked; 2: one line about the input."""
    assert main(["stft", "--n-fft", "8", "--hop-length", "2", "--length", "64"]) == EXIT_PASSED
    assert main(["fp16", str(tmp_path / "absent.onnx"), "-o", "x.onnx"]) == EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("parity: error:")


def test_a_path_that_cannot_be_read_or_written_is_bad_input_not_a_bug(monkeypatch, capsys) -> None:
    """An OSError (a folder that is not there, a file that cannot be written) is exit 2 and
    one line naming the path, not an internal error."""
    from parity.cli import fp32

    def unwritable(*_: object, **__: object) -> object:
        raise PermissionError(13, "Permission denied", "/read-only/out.json")

    monkeypatch.setattr(fp32, "_stft", unwritable)
    assert main(["stft"]) == EXIT_BAD_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("parity: error: /read-only/out.json: Permission denied")


def test_an_output_flag_a_command_would_ignore_is_refused(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path), "-o", "x.md"]) == EXIT_BAD_INPUT
    assert "-o writes a comparison or a backend table; add --compare" in capsys.readouterr().err


def test_exit_1_is_a_failed_gate(tmp_path, capsys) -> None:
    """Two runs' reports where the second lost a gate: the comparison's gate fails."""
    for name, outcome in (("old", "passed"), ("new", "failed")):
        folder = tmp_path / name
        folder.mkdir()
        gate = {"test": "t::gate", "outcome": outcome, "seconds": 0.1, "figures": []}
        report = {"command": "pytest", "gates": [gate]}
        (folder / "report.json").write_text(json.dumps(report))
    code = main(["report", "--compare", str(tmp_path / "old"), str(tmp_path / "new")])
    assert code == EXIT_GATE_FAILED, capsys.readouterr()


def test_exit_3_is_an_internal_error_that_says_to_report_it(monkeypatch, capsys) -> None:
    """A crash is not a verdict: its own code, the traceback, and a line saying it is a bug."""
    from parity.cli import fp32

    def crash(*_: object, **__: object) -> object:
        raise KeyError("planted")

    monkeypatch.setattr(fp32, "_stft", crash)
    assert main(["stft"]) == EXIT_INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "KeyError: 'planted'" in err
    assert err.strip().splitlines()[-1].startswith("parity: internal error (KeyError)")


def test_threads_reach_every_session_that_asks_for_the_default() -> None:
    """``--threads N`` (and ``--parity-threads``) is the count of any session asking for ORT's
    default; a count pinned by its caller (cpu-1t) stays."""
    try:
        use_threads(3)
        assert effective_threads(0) == 3
        assert effective_threads(1) == 1
    finally:
        use_threads(0)
    assert effective_threads(0) == 0


def test_requests_take_names_lists_and_sets() -> None:
    from parity.cli.grammar import requested
    from parity.core.errors import ParityError
    from parity.core.inputs import load_input_set

    inputs = load_input_set(default_inputs())
    parse = build_parser().parse_args
    args = parse(["profile", "m.onnx", "--requests", "greeting,question", "--requests", "numbers"])
    assert requested(args, inputs) == ("greeting", "question", "numbers")
    assert requested(parse(["profile", "m.onnx", "--requests", "selection"]), inputs) == (
        inputs.selection
    )
    assert requested(parse(["profile", "m.onnx"]), inputs) == inputs.held_out  # its default
    with pytest.raises(ParityError, match="--requests 'nope' names no phoneme entry"):
        requested(parse(["profile", "m.onnx", "--requests", "nope"]), inputs)


def test_a_case_name_is_a_request_with_its_own_style_or_its_phoneme_entry() -> None:
    """A case (a phoneme entry and a style row) keeps its name for compare, which speaks it in
    its own style; commands that speak entries read it as its entry."""
    from dataclasses import replace

    from parity.cli.grammar import requested
    from parity.core.inputs import load_input_set

    shipped = load_input_set(default_inputs())
    inputs = replace(shipped, cases={"short": ("greeting", 1)})
    parse = build_parser().parse_args
    assert requested(parse(["compare", "m.onnx"]), inputs, cases=True) == ("short",)
    assert requested(parse(["bench", "m.onnx", "--requests", "cases"]), inputs) == ("greeting",)


def test_a_sweep_request_count_given_the_earlier_way_is_still_a_count(capsys) -> None:
    """``sensitivity --requests 3`` meant three requests before ``--requests`` named entries."""
    from parity.cli.search import _old_request_count

    argv = ["sensitivity", "m.onnx", "--transform", "fp16", "--out-dir", "d", "--requests", "3"]
    args = build_parser().parse_args(argv)
    _old_request_count(args)
    assert (args.request_count, args.requests) == (3, None)
    assert "use --request-count N" in capsys.readouterr().err
