"""One option table feeds both front ends (``parity.core.config.OPTIONS``): every entry is a
pytest option and an ini key; every entry a command takes is that command's flag; and no
command spells a table option its own way."""

from __future__ import annotations

import argparse

import pytest

from parity.cli import build_parser
from parity.core.config import BY_NAME, OPTIONS, build_config


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones as ``weights recover``."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{prefix}{name}"] = sub
                    walk(sub, f"{prefix}{name} ")

    walk(build_parser(), "")
    return found


COMMANDS = _commands()


def test_every_table_option_is_a_pytest_option_and_an_ini_key(pytestconfig) -> None:
    for option in OPTIONS:
        assert pytestconfig.getoption(f"parity_{option.name}", "absent") != "absent", option
        pytestconfig.getini(option.ini)  # raises ValueError for an unknown key


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.commands], ids=lambda o: o.name)
def test_a_command_that_takes_an_option_has_its_flag(option) -> None:
    for command in option.commands:
        flags = COMMANDS[command]._option_string_actions
        assert option.cli_flag in flags, f"parity {command} lacks {option.cli_flag}"
        assert flags[option.cli_flag].dest == option.name


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_spells_a_table_option_its_own_way(command) -> None:
    """A flag whose destination is a table option's is that option, on a command it lists."""
    for action in COMMANDS[command]._actions:
        option = BY_NAME.get(action.dest)
        if option is None or not action.option_strings:
            continue
        assert command in option.commands, f"parity {command} {action.option_strings}"
        assert option.cli_flag in action.option_strings


def test_both_front_ends_build_the_same_configuration(tmp_path) -> None:
    """The CLI's flags and pytest's options, given the same values, make one ParityConfig."""
    from parity.cli.common import config_from

    args = build_parser().parse_args(
        ["compare", "m.onnx", "--preset", "tiny", "--threads", "2", "--scope", "bert=/enc/bert/"]
    )
    values = {"preset": "tiny", "threads": 2, "scope": ["bert=/enc/bert/"]}
    assert config_from(args) == build_config(values, tmp_path.cwd())


def test_an_ini_file_names_paths_from_its_own_folder(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        parity_inputs = data/inputs
        """
    )
    pytester.makepyfile(
        """
        def test_paths(parity_config, pytestconfig):
            root = pytestconfig.inipath.parent
            assert parity_config.inputs_dir == root / "data" / "inputs"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makeini(
        """
        [pytest]
        parity_onnx =
            mine=models/kokoro.onnx
        """
    )
    # The prebuilt file does not exist, so the run stops at configure, naming its full path.
    result = pytester.runpytest()
    result.stderr.fnmatch_lines([f"*{pytester.path / 'models' / 'kokoro.onnx'}: no such ONNX*"])


def test_a_negative_thread_count_is_a_usage_error_in_both_front_ends(pytester, capsys) -> None:
    from parity.cli import main

    result = pytester.runpytest_subprocess("--parity-threads=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "threads: -1 is negative" in result.stderr.str()
    assert main(["stft", "--length", "64"]) == 0  # takes no --threads: nothing to refuse
    assert main(["profile", "m.onnx", "--threads", "-1"]) == 2
    assert "threads: -1 is negative" in capsys.readouterr().err
