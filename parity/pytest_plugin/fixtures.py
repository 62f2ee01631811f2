"""Session fixtures of the run: configuration, recorder, caches, inputs, the PyTorch model,
its export and the session that exposes its module boundaries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parity.core.config import ParityConfig
from parity.pytest_plugin.keys import CONFIG_KEY, RECORDER_KEY
from parity.report.session import Recorder

if TYPE_CHECKING:
    from parity.builders.export import ExportResult
    from parity.core.cache import ArtifactCache
    from parity.core.inputs import InputSet
    from parity.core.memo import RunStore
    from parity.core.spec import KokoroSpec
    from parity.judge.boundaries import IntermediateSession


@pytest.fixture(scope="session")
def parity_config(pytestconfig: pytest.Config) -> ParityConfig:
    """The run's model recipe, exporter and folders, from the command line."""
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def parity_record(pytestconfig: pytest.Config) -> Recorder:
    """Record a measured figure for the terminal summary: ``parity_record.add(section, line)``."""
    return pytestconfig.stash[RECORDER_KEY]


@pytest.fixture(scope="session")
def parity_cache(parity_config: ParityConfig) -> ArtifactCache:
    from parity.core.cache import ArtifactCache, require_writable

    require_writable(parity_config.cache_root)
    return ArtifactCache(parity_config.cache_root)


@pytest.fixture(scope="session")
def parity_runs(parity_config: ParityConfig, parity_cache: ArtifactCache) -> RunStore:
    """PyTorch and ONNX Runtime outputs cached by content (``parity.core.memo``): a check runs
    only what a change can move; ``--parity-rerun`` runs everything."""
    from parity.core.memo import RunStore

    return RunStore(None if parity_config.rerun else parity_cache)


@pytest.fixture(scope="session")
def parity_inputs(parity_config: ParityConfig) -> InputSet:
    """The phoneme strings of the package's inputs (or ``--parity-inputs``) with their seeded
    styles (random weights) or the trained voices (``--parity-weights=recovered``)."""
    from parity.builders.voices import run_inputs

    return run_inputs(parity_config)


@pytest.fixture(scope="session")
def kokoro_spec(parity_config: ParityConfig, parity_cache: ArtifactCache) -> KokoroSpec:
    """The model recipe the run builds, its checkpoint recovered here (once, cached) when the
    weights are the recovered trained ones."""
    from parity.builders.recover import resolved_spec

    return resolved_spec(parity_config, parity_cache)


@pytest.fixture(scope="session")
def kokoro_model(kokoro_spec: KokoroSpec) -> object:
    """The PyTorch Kokoro (``KModel``, eval mode) the run exports and compares against."""
    from parity.builders.model import build_model

    return build_model(kokoro_spec)


@pytest.fixture(scope="session")
def kokoro_export(
    parity_config: ParityConfig,
    parity_cache: ArtifactCache,
    kokoro_spec: KokoroSpec,
    kokoro_model: object,
    parity_record: Recorder,
) -> ExportResult:
    """The model exported with the configured exporter, from the cache when nothing changed."""
    from parity.builders.export import export_cached

    result = export_cached(
        parity_cache,
        kokoro_spec,
        kokoro_model,  # type: ignore[arg-type]
        exporter=parity_config.exporter,
        opset=parity_config.opset,
        padding=parity_config.padding,
    )
    parity_record.add(
        "export", f"{kokoro_spec.label()}: {result.summary()}", **_export_data(result)
    )
    if not result.ok:
        pytest.fail(f"export failed: {result.error_class}: {result.error_line}", pytrace=False)
    return result


def _export_data(result: ExportResult) -> dict[str, object]:
    return {
        "exporter": result.exporter,
        "stft": result.stft,
        "seconds": result.seconds,
        "ok": result.ok,
        "cached": result.cached,
        "node_count": result.node_count,
        "size_bytes": result.size_bytes,
        "error": result.error_line,
    }


@pytest.fixture(scope="session")
def kokoro_intermediate(
    parity_config: ParityConfig,
    kokoro_export: ExportResult,
    kokoro_model: object,
    parity_inputs: InputSet,
    parity_runs: RunStore,
) -> IntermediateSession:
    """ONNX Runtime session of the export with every Kokoro module boundary as an output."""
    from parity.judge.boundaries import IntermediateSession

    assert kokoro_export.path is not None
    # Any input calls the same modules; the scopes come from one PyTorch pass on it.
    first_case = next(iter(parity_inputs.cases))
    request = parity_inputs.case(first_case, kokoro_model.vocab)  # type: ignore[attr-defined]
    return IntermediateSession.for_kokoro(
        kokoro_export.path, kokoro_model, request, threads=parity_config.threads, runs=parity_runs
    )
