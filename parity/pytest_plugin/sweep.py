"""A sensitivity sweep as pytest items (``parity.search.sweep_items``): the job the options
describe, its fixtures, and the merge of its parts on the controller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from parity.pytest_plugin.keys import CONFIG_KEY, RECORDER_KEY, SESSION_START_KEY, SWEEP_JOB_KEY

if TYPE_CHECKING:
    from parity.core.inputs import KokoroInput
    from parity.search.sensitivity import Sweeper, SweepJob


def _sweep_job(config: pytest.Config) -> SweepJob | None:
    """The sweep the options describe (its model pre-processed through the cache), or None."""
    if SWEEP_JOB_KEY in config.stash:
        return config.stash[SWEEP_JOB_KEY]
    option, job = config.option, None
    if option.parity_sweep_model:
        from parity.builders.quantize import preprocessed_cached
        from parity.core.cache import ArtifactCache
        from parity.core.ort_session import require_onnx_file
        from parity.search.sensitivity import SweepJob, SweepSettings

        require_onnx_file(Path(option.parity_sweep_model))
        cache = ArtifactCache(config.stash[CONFIG_KEY].cache_root)
        model, _ = preprocessed_cached(cache, Path(option.parity_sweep_model))
        settings = SweepSettings(
            option.parity_sweep_transform,
            trained_voices=option.parity_sweep_trained_voices,
            threshold=option.parity_sweep_threshold,
            budget=option.parity_sweep_budget,
            depth=option.parity_sweep_depth,
        )
        job = SweepJob(model, Path(option.parity_sweep_out), settings)
    config.stash[SWEEP_JOB_KEY] = job
    return job


def _sweep_requests(config: pytest.Config, job: SweepJob) -> list[KokoroInput]:
    from parity.core.inputs import load_input_set

    voices = None
    if job.settings.trained_voices:
        from parity.builders.voices import load_voices

        voices = load_voices()
    inputs = load_input_set(config.stash[CONFIG_KEY].inputs_dir)
    return job.settings.requests_from(inputs, voices)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One ``parity.search.sweep_items`` item per first-level group of the model being swept."""
    if "sweep_scope" in metafunc.fixturenames:
        job = _sweep_job(metafunc.config)
        if job is None:
            raise pytest.UsageError(
                "parity.search.sweep_items needs --parity-sweep-model MODEL.onnx"
            )
        metafunc.parametrize("sweep_scope", job.scopes())


@pytest.fixture(scope="session")
def parity_sweep_job(pytestconfig: pytest.Config) -> SweepJob:
    job = _sweep_job(pytestconfig)
    assert job is not None  # pytest_generate_tests refuses to collect without one
    return job


@pytest.fixture(scope="session")
def parity_sweeper(pytestconfig: pytest.Config, parity_sweep_job: SweepJob) -> Iterator[Sweeper]:
    """This process's sweeper: reference audio computed once, candidates built in scratch."""
    requests = _sweep_requests(pytestconfig, parity_sweep_job)
    with parity_sweep_job.settings.sweeper(parity_sweep_job.model, requests) as sweeper:
        yield sweeper


def merge_sweep(session: pytest.Session) -> None:
    """On the controller (or a serial run): merge the parts into one decided sweep, and fail
    the session when it does not hold, as ``parity sensitivity`` exits 1 (``judge_sweep``)."""
    config = session.config
    if hasattr(config, "workerinput") or not getattr(config.option, "parity_sweep_model", None):
        return
    job = _sweep_job(config)  # the xdist controller collects nothing, so build it here
    if job is None or not job.parts.is_dir():
        return
    if session.testsfailed:
        return  # a group that failed to measure leaves the table incomplete
    import dataclasses
    import time

    from parity.search.sensitivity import judge_sweep

    with job.settings.sweeper(job.model, _sweep_requests(config, job)) as sweeper:
        result = job.merge(sweeper)
    # The sweep took the whole session (every worker's items), not just the merge.
    started = config.stash.get(SESSION_START_KEY, time.perf_counter())
    result = dataclasses.replace(result, seconds=time.perf_counter() - started)
    result.write(job.out)
    recorder = config.stash[RECORDER_KEY]
    recorder.add("sensitivity sweep", f"{result.summary()}; written to {job.out}")
    verdict = judge_sweep(result)
    if not verdict:
        recorder.add("sensitivity sweep", f"FAILED: {verdict.line()}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
