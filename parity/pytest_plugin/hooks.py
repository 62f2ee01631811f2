"""Session hooks: figures belong to the running test, a ``ParityError`` shows as its one line,
workers hand their figures to the controller, and the summary prints them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parity.core.errors import ParityError
from parity.core.tally import TALLY
from parity.pytest_plugin.gates import write_parity_report
from parity.pytest_plugin.keys import RECORDER_KEY, SESSION_START_KEY, TALLY_START_KEY
from parity.pytest_plugin.sweep import merge_sweep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Figures recorded while a test runs belong to that test's gate in the report."""
    recorder = item.config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.current_test = item.nodeid
    yield
    if recorder is not None:
        recorder.current_test = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Show a ParityError (bad input, broken artefact) as its one line, not a traceback."""
    outcome: Any = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(ParityError):
        report.longrepr = f"ParityError: {call.excinfo.value}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before any sweep item runs (and before xdist starts workers): no stale parts."""
    import time

    session.config.stash[SESSION_START_KEY] = time.perf_counter()
    session.config.stash[TALLY_START_KEY] = TALLY.snapshot()
    option = session.config.option
    if getattr(option, "parity_sweep_model", None) and not hasattr(session.config, "workerinput"):
        import shutil

        shutil.rmtree(Path(option.parity_sweep_out) / "parts", ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Merge a sweep's parts (controller); record what the session computed and read back
    (each worker its own); hand a worker's figures to the controller; write the
    ``--parity-report`` folder (controller)."""
    merge_sweep(session)
    recorder = session.config.stash.get(RECORDER_KEY, None)
    tally = TALLY.since(session.config.stash.get(TALLY_START_KEY, {}))
    if recorder is not None and tally.kinds:
        worker = getattr(session.config, "workerinput", {}).get("workerid")
        line = f"{worker}: {tally.line()}" if worker else tally.line()
        recorder.add("cache", line, tally=tally.kinds)
    write_parity_report(session)
    output = getattr(session.config, "workeroutput", None)
    if output is not None and recorder is not None:
        output["parity_recorder"] = recorder.to_bytes()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the pytest-xdist controller: gather a finished worker's figures for the summary."""
    recorder = node.config.stash.get(RECORDER_KEY, None)
    output = getattr(node, "workeroutput", None) or {}
    if recorder is not None and "parity_recorder" in output:
        recorder.merge_bytes(output["parity_recorder"])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is None or not recorder.measurements:
        return
    terminalreporter.section("parity figures")
    for section, measurements in recorder.sections().items():
        terminalreporter.write_line(f"{section}:")
        for measurement in measurements:
            terminalreporter.write_line(f"  {measurement.line}")
