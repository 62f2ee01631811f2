"""int8 variants of an exported Kokoro, on ONNX Runtime's ``onnxruntime.quantization``.

A recipe is declarative (mode, weight and activation types, per-channel, op types,
exclusions, calibration method), so a variant can be rebuilt from a few lines and cached by
them. Dynamic mode quantizes weights and computes activation scales at run time; the static
modes (QDQ, QOperator) calibrate activation ranges on a representative input set first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import onnx

from parity.builders.calibration import (
    CALIBRATIONS,
    CalibrationKind,
    calibration_method,
    calibration_ranges_cached,
    calibration_reader,
    read_ranges,
    requests_digest,
)
from parity.builders.conv_gemm import GemmForm, rewrite_convs_as_gemm
from parity.builders.instance_norm import fuse_instance_norms
from parity.builders.ort_tools import private_link, quiet
from parity.builders.stft_op import STFT_BASES, StftBasis, rewrite_stft_ops
from parity.core.cache import ArtifactCache, CacheKey, atomic_path, content_digest
from parity.core.errors import ParityError, first_line
from parity.core.graph import load_model
from parity.core.inputs import KokoroInput
from parity.core.interface import find_interface
from parity.core.memo import source_digest
from parity.core.scopes import first_naming_nothing

__all__ = [
    "KOKORO_EXCLUDE_SCOPES",
    "TRAINED_EXCLUDE_SCOPES",
    "QuantBuild",
    "QuantRecipe",
    "quantize_cached",
    "quantize_model",
]

QuantMode = Literal["dynamic", "qdq", "qoperator"]
IntType = Literal["int8", "uint8"]
QUANT_MODES: tuple[QuantMode, ...] = ("dynamic", "qdq", "qoperator")
OP_TYPES = ("MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM")
_INTEGER_OPS = {
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
    "MatMulIntegerToFloat",
    "DynamicQuantizeLSTM",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "DequantizeLinear",
}
# Kept in float by default, for the reasons measured in float16 (parity.builders.fp16): the STFT
# analysis turns its input's rounding into phase jumps (its Conv holds the DFT tables), the
# harmonic source feeds it, and the duration head rounds sums to whole frames.
KOKORO_EXCLUDE_SCOPES = (
    "/decoder/generator/m_source/",
    "/decoder/generator/analysis/",
    "/duration_proj/",
)


# The trained model (PyPI's int8 export, dequantized) names its scopes after kokoro-onnx's
# wrapper. Measured there, one scope at a time quantized (dynamic uint8, sentence x 5 voices,
# mean log-mel to float32; 0.15 is what ORT's optimisation alone moves): ALBERT 1.60 with the
# audio 3 to 4% short, duration_proj 0.42, conv_post 0.54 with the >6 kHz share tripled,
# resblocks 0.21; text encoders, decoder blocks and noise convs 0.15 to 0.16.
TRAINED_EXCLUDE_SCOPES = (
    "/decoder/decoder/generator/m_source/",
    "/encoder/bert/",
    "/encoder/predictor/duration_proj",
    "/decoder/decoder/generator/conv_post",
)


@dataclass(frozen=True)
class QuantRecipe:
    """How to quantize: everything that shapes the output model, nothing else."""

    mode: QuantMode = "dynamic"
    weight_type: IntType = "uint8"
    activation_type: IntType = "uint8"
    per_channel: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Conv")
    exclude_nodes: tuple[str, ...] = ()
    exclude_scopes: tuple[str, ...] = KOKORO_EXCLUDE_SCOPES
    calibration: CalibrationKind = "minmax"
    preprocess: bool = True
    # Store the weights of the layers left in float as int8 (parity.builders.int8_weights),
    # except under these scopes; None leaves them float32.
    int8_weights_except: tuple[str, ...] | None = None
    # Convs under these scopes are kept from ORT's quantizer and rewritten as an int8 im2col
    # GEMM with float outputs (parity.builders.conv_gemm), with activation scales as
    # ``gemm_scales`` says: "dynamic" per tensor, or "static" (calibrated per tensor).
    gemm_scopes: tuple[str, ...] = ()
    gemm_scales: GemmForm = "dynamic"
    # Fold the exporter's seven-node instance norms back into InstanceNormalization
    # (parity.builders.instance_norm): one pass instead of seven, float arithmetic.
    fuse_instance_norms: bool = False
    # Rewrite ONNX STFT ops as framing + one MatMul (parity.builders.stft_op): ORT's STFT runs
    # on one thread, 11 to 17 times slower, and is the less exact of the two. ``stft_basis``
    # "onnxruntime" keeps the op's own rounding, and so the float32 file's phases.
    rewrite_stft: bool = False
    stft_basis: StftBasis = "exact"
    # Rewrite AdaIN + Snake chains in fewer passes (parity.builders.snake): the affine goes into
    # the fused instance norms, so it needs ``fuse_instance_norms``; float arithmetic.
    fold_snakes: bool = False

    def __post_init__(self) -> None:
        if self.fold_snakes and not self.fuse_instance_norms:
            raise ParityError(
                "quantize: fold_snakes rewrites the fused instance norms; set fuse_instance_norms"
            )
        if self.mode not in QUANT_MODES:
            raise ParityError(f"quantize: unknown mode {self.mode!r}; use {', '.join(QUANT_MODES)}")
        if self.calibration not in CALIBRATIONS:
            raise ParityError(
                f"quantize: unknown calibration {self.calibration!r}; use {', '.join(CALIBRATIONS)}"
            )
        if self.stft_basis not in STFT_BASES:
            raise ParityError(
                f"quantize: unknown stft_basis {self.stft_basis!r}; use {', '.join(STFT_BASES)}"
            )
        if self.gemm_scales not in ("dynamic", "static"):
            raise ParityError(
                f"quantize: unknown gemm_scales {self.gemm_scales!r}; use dynamic or static"
            )
        unknown = sorted(set(self.op_types) - set(OP_TYPES))
        if unknown:
            raise ParityError(
                f"quantize: op type {unknown[0]} is not quantizable here; use {', '.join(OP_TYPES)}"
            )

    @property
    def static(self) -> bool:
        return self.mode != "dynamic"

    def rewrites_as_gemm(self, node: onnx.NodeProto) -> bool:
        """Whether the GEMM rewrite makes ``node`` int8 (a conv in ``gemm_scopes``, outside
        ``exclude_scopes``: what ``rewrite_convs_as_gemm`` is given as scopes and keep)."""
        return (
            node.op_type == "Conv"
            and node.name.startswith(self.gemm_scopes)
            and not node.name.startswith(self.exclude_scopes)
        )

    @property
    def calibrates(self) -> bool:
        """Whether the build reads activation ranges: a static mode, or static GEMM scales."""
        return self.static or (bool(self.gemm_scopes) and self.gemm_scales == "static")

    def label(self) -> str:
        parts = [self.mode, f"w{self.weight_type}"]
        if self.static:
            parts += [f"a{self.activation_type}", self.calibration]
        parts.append("per-channel" if self.per_channel else "per-tensor")
        if self.int8_weights_except is not None:
            parts.append("int8-stored float weights")
        if self.gemm_scopes:
            parts.append(f"{self.gemm_scales} int8 conv gemm")
        if self.fuse_instance_norms:
            parts.append("fused instance norms")
        if self.rewrite_stft:
            parts.append(f"STFT as MatMul ({self.stft_basis} basis)")
        if self.fold_snakes:
            parts.append("folded snakes")
        return " ".join(parts)


@dataclass(frozen=True)
class QuantBuild:
    """A quantized model, what was quantized and left out, and how the build went."""

    path: Path
    recipe: QuantRecipe
    seconds: float
    size_before: int
    size_after: int
    integer_ops: dict[str, int]  # op type -> count in the output
    excluded: int  # candidate nodes left in float (GEMM-rewritten convs are int8, not counted)
    preprocess: str  # "done", "off", or why ONNX Runtime's pre-processing failed
    cached: bool = False

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before

    def summary(self) -> str:
        ops = ", ".join(f"{count} {op}" for op, count in sorted(self.integer_ops.items()))
        origin = "from cache" if self.cached else f"built in {self.seconds:.0f}s"
        return (
            f"{self.recipe.label()}: {origin}, {self.size_before / 1e6:.1f} MB -> "
            f"{self.size_after / 1e6:.1f} MB ({self.size_ratio:.2f}x), {ops}; "
            f"{self.excluded} candidates kept float; pre-processing {self.preprocess}"
        )


# What shapes a built variant's bytes (its cache key).
_BUILD_MODULES = (
    "builders/quantize.py",
    "builders/calibration.py",
    "builders/ort_tools.py",
    "builders/int8_weights.py",
    "builders/conv_gemm.py",
    "builders/instance_norm.py",
    "builders/snake.py",
    "builders/stft_op.py",
    "builders/dft.py",
)


def excluded_nodes(model: onnx.ModelProto, recipe: QuantRecipe) -> list[str]:
    """Names of the candidate nodes the recipe keeps in float (by name or scope prefix)."""
    names = {node.name for node in model.graph.node}
    missing = first_naming_nothing(recipe.exclude_nodes, names, prefix=False)
    if missing is not None:
        raise ParityError(
            f"quantize: --exclude {missing!r} names no node of the model; "
            "list them with `parity compare MODEL --list-scopes`"
        )
    scopes = (
        *recipe.exclude_scopes,
        *(recipe.int8_weights_except or ()),
        *recipe.gemm_scopes,
    )
    empty = first_naming_nothing(scopes, names, optional=KOKORO_EXCLUDE_SCOPES)
    if empty is not None:
        raise ParityError(
            f"quantize: the recipe's scope {empty!r} names no node of the model, so what it keeps "
            "float would be quantized; recipes hold the node names of the model they were made "
            "for (fixtures/recipes: the trained one's); list this model's with "
            "`parity compare MODEL --list-scopes`"
        )
    scoped = [
        node.name
        for node in model.graph.node
        if node.op_type in recipe.op_types
        and (node.name.startswith(recipe.exclude_scopes) or recipe.rewrites_as_gemm(node))
    ]
    return sorted({*recipe.exclude_nodes, *scoped})


def preprocess_model(source: Path, target: Path) -> str:
    """ONNX Runtime's pre-processing: shape inference, then optimisation (constant folding).

    Its symbolic shape inference gives up on Kokoro ("Incomplete symbolic shape inference",
    measured with ORT 1.32); the run is then repeated with ONNX's shape inference only. The
    optimisation is what matters most: it folds the weight-norm arithmetic (weight_g *
    weight_v / |weight_v|) into plain initializers, without which the quantizer refuses
    Kokoro's convolutions ("Expected /F0.0/Mul_output_0 to be an initializer").
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    notes = []
    source, target = Path(source).resolve(), Path(target).resolve()  # before leaving the cwd
    for skip_symbolic in (False, True):
        try:
            with quiet(), _scratch_cwd():
                quant_pre_process(str(source), str(target), skip_symbolic_shape=skip_symbolic)
        except Exception as error:  # the message is what the report says
            notes.append(f"{type(error).__name__}: {first_line(error, 100)}")
            continue
        if notes:
            return f"done without symbolic shapes ({notes[0]})"
        return "done"
    return f"failed ({'; '.join(notes)}), skipped"


@contextlib.contextmanager
def _scratch_cwd() -> Iterator[None]:
    """Run in a temporary working directory, removed afterwards.

    ORT 1.32's symbolic shape inference writes ``sym_shape_infer_temp.onnx`` and a 325 MB
    ``<uuid>.data`` for Kokoro into the working directory and leaves them there when it gives
    up (measured: one pair per pre-processing run). Changing directory is process-wide; the
    harness runs quantization from one thread per process (pytest-xdist uses processes).
    """
    previous = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="parity-preprocess-") as scratch:
        os.chdir(scratch)
        try:
            yield
        finally:
            os.chdir(previous)


def quantize_model(
    source: Path,
    target: Path,
    recipe: QuantRecipe,
    calibration: Sequence[KokoroInput] = (),
    ranges: Path | None = None,
) -> QuantBuild:
    """Quantize ``source`` into ``target`` (atomically) as ``recipe`` says. A static recipe
    calibrates on ``calibration``, or reads ``ranges`` (``calibrate_ranges`` run on the model
    ONNX Runtime quantizes: the pre-processed one when the recipe pre-processes)."""
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    source = Path(source)
    original = load_model(source)
    exclude = excluded_nodes(original, recipe)
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch, atomic_path(Path(target)) as temporary:
        model_in, preprocess = private_link(source, Path(scratch)), "off"
        if recipe.preprocess:
            model_in = Path(scratch) / "preprocessed.onnx"
            preprocess = preprocess_model(source, model_in)
            if preprocess.startswith("failed"):
                model_in = source
        common: dict[str, Any] = {
            "op_types_to_quantize": list(recipe.op_types),
            "per_channel": recipe.per_channel,
            "weight_type": types[recipe.weight_type],
            "nodes_to_exclude": exclude,
        }
        with quiet():
            if recipe.static:
                quantize_static(
                    str(model_in),
                    str(temporary),
                    calibration_reader(calibration, find_interface(original, str(source))),
                    quant_format=QuantFormat.QDQ if recipe.mode == "qdq" else QuantFormat.QOperator,
                    activation_type=types[recipe.activation_type],
                    calibrate_method=calibration_method(recipe.calibration),
                    extra_options={"CalibStridedMinMax": 1},
                    calibration_cache_path=None if ranges is None else str(ranges),
                    **common,
                )
            else:
                quantize_dynamic(str(model_in), str(temporary), **common)
        if recipe.gemm_scopes or recipe.fuse_instance_norms or recipe.rewrite_stft:
            _rewrite_graph(temporary, recipe, ranges)
        if recipe.int8_weights_except is not None:
            _store_int8_weights(temporary, recipe.int8_weights_except)
        if recipe.fold_snakes:
            from parity.builders.snake import fold_snakes_in_file

            # Last: a float conv's weight takes the fold as a Mul after its int8 storage, so
            # the stored scales stay those of the trained weights.
            fold_snakes_in_file(temporary)
        quantized = onnx.load(str(temporary), load_external_data=False)
        size_after = temporary.stat().st_size
    ops = Counter(n.op_type for n in quantized.graph.node if n.op_type in _INTEGER_OPS)
    rewritten = {node.name for node in original.graph.node if recipe.rewrites_as_gemm(node)}
    return QuantBuild(
        Path(target),
        recipe,
        time.perf_counter() - start,
        source.stat().st_size,
        size_after,
        dict(ops),
        # Kept from ORT's quantizer only because the GEMM rewrite makes them int8: not float.
        len(set(exclude) - (rewritten - set(recipe.exclude_nodes))),
        preprocess,
    )


def _rewrite_graph(path: Path, recipe: QuantRecipe, ranges: Path | None) -> None:
    """The recipe's graph rewrites on ``path`` (in place): the ``gemm_scopes`` convs as int8
    GEMMs, the instance norms folded, the STFT ops as MatMuls."""
    model = onnx.load(str(path))
    if recipe.gemm_scopes:
        bounds = None
        if recipe.gemm_scales == "static":
            if ranges is None:
                raise ParityError("quantize: static gemm scales need calibration requests")
            bounds = read_ranges(ranges)
        rewrite_convs_as_gemm(
            model, recipe.gemm_scopes, recipe.gemm_scales, bounds, keep=recipe.exclude_scopes
        )
    if recipe.fuse_instance_norms:
        fuse_instance_norms(model)
    if recipe.rewrite_stft:
        rewrite_stft_ops(model, recipe.stft_basis)
    onnx.save(model, str(path))


def _store_int8_weights(path: Path, keep_scopes: Sequence[str]) -> None:
    """The float weights the quantizer left, stored as int8 in ``path`` (rewritten in place)."""
    from parity.builders.int8_weights import store_float_weights_as_int8

    model = onnx.load(str(path))
    store_float_weights_as_int8(model, keep_scopes)
    onnx.save(model, str(path))


def quantize_cached(
    cache: ArtifactCache,
    source: Path,
    recipe: QuantRecipe,
    calibration: Sequence[KokoroInput] = (),
) -> QuantBuild:
    """``quantize_model`` through the cache, keyed by source, recipe, inputs and versions."""
    from onnxruntime import __version__ as ort_version

    from parity.core.ort_session import effective_threads

    source = Path(source)
    inputs = requests_digest(calibration if recipe.calibrates else ())
    key = CacheKey(
        "quantized",
        {
            "source": content_digest(source),
            "recipe": {**recipe.__dict__, "calibration_inputs": inputs[:16]},
            # A build that calibrates runs a session, on the run's --threads.
            "threads": effective_threads(0) if recipe.calibrates else 0,
            "code": source_digest(_BUILD_MODULES, ())[:16],
            "onnxruntime": ort_version,
        },
    )
    built: list[QuantBuild] = []

    def build(temporary: Path) -> dict[str, object]:
        # Pre-processing and calibration happen once per source, shared by every recipe.
        ready, note = preprocessed_cached(cache, source) if recipe.preprocess else (source, "")
        ranges = None
        if recipe.calibrates and calibration:
            ranges = calibration_ranges_cached(
                cache, ready, recipe.calibration, calibration, OP_TYPES
            )
        result = quantize_model(
            ready, temporary, replace(recipe, preprocess=False), calibration, ranges
        )
        if recipe.preprocess:
            result = replace(
                result, recipe=recipe, size_before=source.stat().st_size, preprocess=note
            )
        built.append(result)
        return {
            "seconds": result.seconds,
            "size_before": result.size_before,
            "integer_ops": result.integer_ops,
            "excluded": result.excluded,
            "preprocess": result.preprocess,
        }

    artefact = cache.get_or_build(key, ".onnx", build)
    if built:
        return replace(built[0], path=artefact.path, size_after=int(artefact.meta["size"]))
    meta = artefact.meta
    return QuantBuild(
        artefact.path,
        recipe,
        float(meta["seconds"]),
        int(meta["size_before"]),
        int(meta["size"]),
        dict(meta["integer_ops"]),
        int(meta["excluded"]),
        str(meta["preprocess"]),
        cached=True,
    )


def preprocessed_cached(cache: ArtifactCache, source: Path) -> tuple[Path, str]:
    """``preprocess_model`` through the cache: (the optimised model, how pre-processing went)."""
    from onnxruntime import __version__ as ort_version

    source = Path(source)
    key = CacheKey(
        "preprocessed",
        {
            "source": content_digest(source),
            "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
            "onnxruntime": ort_version,
        },
    )

    def build(temporary: Path) -> dict[str, object]:
        outcome = preprocess_model(source, temporary)
        if outcome.startswith("failed"):
            shutil.copyfile(source, temporary)  # the sweep then works on the model as given
        return {"preprocess": outcome}

    artefact = cache.get_or_build(key, ".onnx", build)
    return artefact.path, str(artefact.meta["preprocess"])
