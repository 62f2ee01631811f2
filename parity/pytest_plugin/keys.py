"""What the plugin's parts keep on ``config.stash``: the run's configuration and recorder,
the sweep being run and when the session started."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parity.report.session import ParityConfig, Recorder

if TYPE_CHECKING:
    from parity.search.sensitivity import SweepJob

RECORDER_KEY = pytest.StashKey[Recorder]()
CONFIG_KEY = pytest.StashKey[ParityConfig]()
SWEEP_JOB_KEY: pytest.StashKey[SweepJob | None] = pytest.StashKey()
SESSION_START_KEY = pytest.StashKey[float]()
