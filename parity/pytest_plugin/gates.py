"""``--parity-report``: each test's outcome as a gate, written with the recorded figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parity.pytest_plugin.keys import CONFIG_KEY, RECORDER_KEY


class GateCollector:
    """Each test's outcome, time and first failure line, for ``--parity-report``."""

    def __init__(self) -> None:
        self.outcomes: dict[str, list[Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test, outcome, seconds, message = self.outcomes.setdefault(
            report.nodeid, [report.nodeid, "passed", 0.0, None]
        )
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
            message = report.wasxfail or None  # the known failure's reason
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
            message = _failure_line(report)
        elif report.skipped and outcome == "passed":
            outcome = "skipped"
            reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else None
            message = reason.removeprefix("Skipped: ") if reason else None
        self.outcomes[report.nodeid] = [test, outcome, seconds + report.duration, message]


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else report.outcome


GATES_KEY = pytest.StashKey[GateCollector]()


def write_parity_report(session: pytest.Session) -> None:
    config = session.config
    parity_config = config.stash.get(CONFIG_KEY, None)
    folder = parity_config.report_dir if parity_config is not None else None
    recorder = config.stash.get(RECORDER_KEY, None)
    if not folder or recorder is None or hasattr(config, "workerinput"):
        return
    from parity.report.run_report import build_report, write_report

    outcomes = [tuple(row) for row in config.stash[GATES_KEY].outcomes.values()]
    command = "pytest " + " ".join(config.invocation_params.args)
    report = build_report(outcomes, recorder.measurements, command)
    objects = [value for m in recorder.measurements for value in m.data.values()]
    written = write_report(report, Path(folder), objects, recorder.sounds, recorder.spoken)
    failing = len(written.failures())
    recorder.add(
        "report",
        f"{Path(folder) / 'summary.md'}: {len(written.gates)} gates, "
        f"{failing} failing, {len(written.pictures)} pictures, {len(written.sounds)} sounds",
    )
