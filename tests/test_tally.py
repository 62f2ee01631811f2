"""parity.core.tally: what a session or a command computed and read back, per cache kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import parity.core.cache
import parity.core.memo
import parity.core.tally
from parity.core.cache import ArtifactCache, CacheKey
from parity.core.memo import RunStore
from parity.core.tally import KindTally, Tally


class Clock:
    """A perf_counter that moves only when a build says it worked."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(parity.core.tally.time, "perf_counter", fake)
    return fake


@pytest.fixture
def tally(monkeypatch: pytest.MonkeyPatch) -> Tally:
    """A fresh tally for the cache and the run store, so these builds stay out of the
    session's own line."""
    fresh = Tally()
    monkeypatch.setattr(parity.core.cache, "TALLY", fresh)
    monkeypatch.setattr(parity.core.memo, "TALLY", fresh)
    return fresh


def _writer(clock: Clock, seconds: float, inner=None):
    def build(target: Path) -> dict[str, object]:
        clock.now += seconds
        if inner is not None:
            inner()
        target.write_bytes(b"x")
        return {}

    return build


def test_a_build_then_a_hit_reads_as_one_built_and_one_read(tmp_path: Path, clock, tally) -> None:
    cache = ArtifactCache(tmp_path)
    for _ in range(2):
        cache.get_or_build(CacheKey("thing", {"a": 1}), ".bin", _writer(clock, 3.0))
    assert tally.kinds == {"thing": KindTally(built=1, read=1, seconds=3.0)}


def test_since_a_snapshot_counts_only_what_came_after(tmp_path: Path, clock, tally) -> None:
    """A session's (or a command's) share of the process's tally."""
    cache = ArtifactCache(tmp_path)
    cache.get_or_build(CacheKey("thing", {"a": 1}), ".bin", _writer(clock, 3.0))
    mark = tally.snapshot()
    cache.get_or_build(CacheKey("thing", {"a": 1}), ".bin", _writer(clock, 3.0))
    cache.get_or_build(CacheKey("other", {"a": 1}), ".bin", _writer(clock, 1.0))
    assert tally.since(mark).kinds == {
        "thing": KindTally(built=0, read=1, seconds=0.0),
        "other": KindTally(built=1, read=0, seconds=1.0),
    }


def test_a_build_inside_a_build_counts_its_seconds_once(tmp_path: Path, clock, tally) -> None:
    cache = ArtifactCache(tmp_path)

    def calibrate() -> None:
        cache.get_or_build(CacheKey("calibration", {"a": 1}), ".bin", _writer(clock, 5.0))

    cache.get_or_build(CacheKey("quantized", {"a": 1}), ".bin", _writer(clock, 2.0, calibrate))
    assert tally.kinds["quantized"].seconds == 2.0
    assert tally.kinds["calibration"].seconds == 5.0
    assert tally.seconds == 7.0


def test_a_failed_build_counts_as_nothing_built(tmp_path: Path, clock, tally) -> None:
    cache = ArtifactCache(tmp_path)

    def broken(target: Path) -> dict[str, object]:
        clock.now += 4.0
        raise RuntimeError("exporter refused")

    with pytest.raises(RuntimeError):
        cache.get_or_build(CacheKey("export", {"a": 1}), ".onnx", broken)
    assert tally.kinds == {}


def test_runs_without_a_store_are_tallied_as_computed(clock, tally) -> None:
    """``--parity-rerun``: nothing is stored, every run still shows in the tally."""
    for _ in range(2):
        RunStore(None).arrays("torch", {"input": "a"}, lambda: {"x": np.zeros(2)})
    RunStore(None).record("latency", {"input": "a"}, lambda: [1.0])
    assert tally.kinds == {
        "runs-torch": KindTally(built=2, read=0, seconds=0.0),
        "runs-latency": KindTally(built=1, read=0, seconds=0.0),
    }


def test_the_line_puts_the_costliest_kind_first() -> None:
    tally = Tally()
    for kind, built, read, seconds in (("export", 1, 0, 9.0), ("runs-torch", 3, 2, 118.0)):
        entry = tally.kinds.setdefault(kind, KindTally())
        entry.built, entry.read, entry.seconds = built, read, seconds
    assert tally.line() == (
        "computed 4 in 127.0 s: runs-torch 3 in 118.0 s, export 1 in 9.0 s;"
        " read back 2: runs-torch 2"
    )
    assert Tally().line() == "computed 0 in 0.0 s; read back 0"


def test_a_session_reports_what_it_built_and_a_second_one_what_it_read(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from parity.core.cache import CacheKey

        def test_builds(parity_cache):
            def build(target):
                target.write_bytes(b"x")
                return {}

            parity_cache.get_or_build(CacheKey("thing", {"a": 1}), ".bin", build)
        """
    )
    cache = f"--parity-cache-dir={pytester.path / 'cache'}"
    cold = pytester.runpytest(cache)
    cold.stdout.fnmatch_lines(["cache:", "  computed 1 in * s: thing 1 in * s; read back 0"])
    warm = pytester.runpytest(cache)
    warm.stdout.fnmatch_lines(["cache:", "  computed 0 in 0.0 s; read back 1: thing 1"])
