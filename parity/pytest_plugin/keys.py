"""What the plugin's parts keep on ``config.stash``: the run's configuration and recorder,
the sweep being run, when the session started and the cache tally then."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parity.core.config import ParityConfig
from parity.core.tally import KindTally
from parity.report.session import Recorder

if TYPE_CHECKING:
    from parity.judge.subjects import Subject
    from parity.search.sensitivity import SweepJob

RECORDER_KEY = pytest.StashKey[Recorder]()
CONFIG_KEY = pytest.StashKey[ParityConfig]()
SWEEP_JOB_KEY: pytest.StashKey[SweepJob | None] = pytest.StashKey()
SESSION_START_KEY = pytest.StashKey[float]()
TALLY_START_KEY = pytest.StashKey[dict[str, KindTally]]()
SUBJECTS_KEY: pytest.StashKey[tuple[Subject, ...]] = pytest.StashKey()
