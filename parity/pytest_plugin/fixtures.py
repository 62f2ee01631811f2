"""Session fixtures of the run: configuration, recorder, caches, inputs, the PyTorch model,
its export and float16 variant, and the sessions that check them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from parity.pytest_plugin.keys import CONFIG_KEY, RECORDER_KEY
from parity.report.session import ParityConfig, Recorder

if TYPE_CHECKING:
    from parity.builders.export import ExportResult
    from parity.builders.fp16 import Fp16Build
    from parity.core.cache import ArtifactCache
    from parity.core.inputs import InputSet
    from parity.core.memo import RunStore
    from parity.judge.checks import ForcingSession
    from parity.judge.localize import IntermediateSession


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
def parity_runs(pytestconfig: pytest.Config, parity_cache: ArtifactCache) -> RunStore:
    """PyTorch and ONNX Runtime outputs cached by content (``parity.core.memo``): a check runs
    only what a change can move; ``--parity-rerun`` runs everything."""
    from parity.core.memo import RunStore

    return RunStore(None if pytestconfig.option.parity_rerun else parity_cache)


@pytest.fixture(scope="session")
def parity_inputs(parity_config: ParityConfig) -> InputSet:
    """The phoneme strings of ``fixtures/inputs`` with its seeded styles (random weights) or
    the trained voices (``--parity-weights=recovered``)."""
    from parity.core.inputs import load_input_set

    inputs = load_input_set(parity_config.inputs_dir)
    if parity_config.weights == "recovered":
        from parity.builders.weights import load_voices

        return load_voices().speaking(inputs)
    return inputs


@pytest.fixture(scope="session")
def kokoro_model(parity_config: ParityConfig) -> object:
    """The PyTorch Kokoro (``KModel``, eval mode) the run exports and compares against."""
    return parity_config.spec.build()


@pytest.fixture(scope="session")
def kokoro_export(
    parity_config: ParityConfig,
    parity_cache: ArtifactCache,
    kokoro_model: object,
    parity_record: Recorder,
) -> ExportResult:
    """The model exported with the configured exporter, from the cache when nothing changed."""
    from parity.builders.export import export_cached

    result = export_cached(
        parity_cache,
        parity_config.spec,
        kokoro_model,  # type: ignore[arg-type]
        exporter=parity_config.exporter,
        opset=parity_config.opset,
    )
    parity_record.add(
        "export", f"{parity_config.spec.label()}: {result.summary()}", **_export_data(result)
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
def kokoro_forcing(
    parity_config: ParityConfig, kokoro_export: ExportResult, parity_runs: RunStore
) -> ForcingSession:
    """ONNX Runtime session of the export that also outputs the generator's inputs and source."""
    from parity.judge.checks import ForcingSession

    assert kokoro_export.path is not None
    return ForcingSession(kokoro_export.path, threads=parity_config.threads, runs=parity_runs)


@pytest.fixture(scope="session")
def kokoro_intermediate(
    parity_config: ParityConfig,
    kokoro_export: ExportResult,
    kokoro_model: object,
    parity_inputs: InputSet,
    parity_runs: RunStore,
) -> IntermediateSession:
    """ONNX Runtime session of the export with every Kokoro module boundary as an output."""
    from parity.judge.localize import IntermediateSession

    assert kokoro_export.path is not None
    # Any input calls the same modules; the scopes come from one PyTorch pass on it.
    first_case = next(iter(parity_inputs.cases))
    request = parity_inputs.case(first_case, kokoro_model.vocab)  # type: ignore[attr-defined]
    return IntermediateSession.for_kokoro(
        kokoro_export.path, kokoro_model, request, threads=parity_config.threads, runs=parity_runs
    )


@pytest.fixture(scope="session")
def kokoro_fp16(
    parity_cache: ArtifactCache, kokoro_export: ExportResult, parity_record: Recorder
) -> Fp16Build:
    """The export in float16 with Kokoro's measured block list, converted once and cached."""
    from parity.builders.fp16 import KOKORO_FP16, convert_cached

    assert kokoro_export.path is not None
    build = convert_cached(parity_cache, kokoro_export.path, KOKORO_FP16)
    origin = "from cache" if build.cached else "converted"
    parity_record.add("float16", f"{origin}: {build.report.summary()}", **_fp16_data(build))
    return build


def _fp16_data(build: Fp16Build) -> dict[str, object]:
    from parity.core.jsonable import to_jsonable

    return {"path": str(build.path), "cached": build.cached, **to_jsonable(build.report)}


@pytest.fixture(scope="session")
def kokoro_fp16_forcing(
    parity_config: ParityConfig, kokoro_fp16: Fp16Build, parity_runs: RunStore
) -> ForcingSession:
    """ONNX Runtime session of the float16 variant, exposing its generator's inputs and source."""
    from parity.judge.checks import ForcingSession

    return ForcingSession(kokoro_fp16.path, threads=parity_config.threads, runs=parity_runs)
