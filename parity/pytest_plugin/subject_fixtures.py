"""The files the gates judge (``parity.judge.subjects``): planned once per run, handed to each
gate as ``parity_subject`` (one test per file of the precisions its ``judges`` marker names),
built and opened through ``parity_files``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parity.pytest_plugin.keys import CONFIG_KEY, SUBJECTS_KEY

if TYPE_CHECKING:
    from parity.core.cache import ArtifactCache
    from parity.core.config import ParityConfig
    from parity.core.memo import RunStore
    from parity.core.spec import KokoroSpec
    from parity.judge.subjects import Subject, SubjectFiles
    from parity.report.session import Recorder


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "judges(*precisions): a gate run once per file of these precisions (fp32, fp16, "
        "quantized) that the run judges, as parity_subject",
    )
    config.addinivalue_line(
        "markers",
        "parity_no_subject(reason): a gate with no file of its precisions in this run; it "
        "leaves the run, and the figures say why",
    )


def run_subjects(config: pytest.Config) -> tuple[Subject, ...]:
    """The run's subjects, planned on first use (prebuilt files are read then)."""
    if SUBJECTS_KEY not in config.stash:
        from parity.core.errors import ParityError
        from parity.judge.subjects import plan_subjects

        try:
            config.stash[SUBJECTS_KEY] = plan_subjects(config.stash[CONFIG_KEY])
        except ParityError as error:
            raise pytest.UsageError(f"parity: {error}") from error
    return config.stash[SUBJECTS_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "parity_subject" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("judges")
    precisions = marker.args if marker is not None else ("fp32",)
    chosen = [s for s in run_subjects(metafunc.config) if s.precision in precisions]
    if chosen:
        metafunc.parametrize(
            "parity_subject", chosen, ids=[s.name for s in chosen], scope="session"
        )
        return
    # Not a skip: with no such file the gate has nothing to judge, so it leaves the run
    # (``parity.pytest_plugin.requirements``) and the figures say why.
    reason = f"no {' or '.join(precisions)} file in this run (--parity-onnx NAME=PATH adds one)"
    metafunc.parametrize(
        "parity_subject", [pytest.param(None, marks=NO_SUBJECT(reason))], ids=["none"]
    )


NO_SUBJECT = pytest.mark.parity_no_subject


@pytest.fixture(scope="session")
def parity_files(  # noqa: PLR0917 (pytest passes fixtures as parameters)
    request: pytest.FixtureRequest,
    pytestconfig: pytest.Config,
    parity_config: ParityConfig,
    kokoro_spec: KokoroSpec,
    parity_cache: ArtifactCache,
    parity_runs: RunStore,
    parity_record: Recorder,
) -> SubjectFiles:
    """Each judged file, its PyTorch reference and its sessions, built once per run."""
    from pathlib import Path

    from parity.judge.subjects import SubjectFiles

    subjects = run_subjects(pytestconfig)
    own = next((s for s in subjects if s.origin == "export" and s.hook is None), None)
    # The harness's own export is the kokoro_export fixture's: built and recorded once.
    own_export = request.getfixturevalue("kokoro_export").path if own is not None else None
    for subject in subjects:
        parity_record.add("judged files", subject.describe())
    return SubjectFiles(
        parity_config,
        kokoro_spec,
        cache=parity_cache,
        runs=parity_runs,
        subjects=subjects,
        rootdir=Path(str(pytestconfig.rootpath)),
        own_export=own_export,
        report=lambda finding: parity_record.add("judged files", finding),
    )
