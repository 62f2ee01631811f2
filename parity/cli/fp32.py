"""``parity export``, ``parity compare`` (staged fp32 parity, intermediates) and ``parity stft``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.cli.common import add_table_options, config_from, kokoro_file, run_store, spec_from
from parity.cli.grammar import (
    add_json,
    add_output,
    add_requests,
    output_of,
    requested,
    write_json,
)
from parity.core.config import CPU_PROVIDERS
from parity.core.errors import ParityError

if TYPE_CHECKING:
    from parity.core.config import ParityConfig
    from parity.core.inputs import InputSet, KokoroInput


def _export(args: argparse.Namespace) -> int:
    from parity.builders.export import export_kokoro
    from parity.builders.model import build_model

    config = config_from(args)
    model = build_model(spec_from(config))
    result = export_kokoro(
        model,
        Path(output_of(args)),
        exporter=config.exporter,
        opset=config.opset,
        stft=config.spec.stft,
        padding=config.padding,
    )
    print(result.summary())
    return 0 if result.ok else 1


def _compare(args: argparse.Namespace) -> int:
    from parity.builders.model import build_model
    from parity.builders.voices import run_inputs
    from parity.core.node_side import runs_on, use_adapter, use_ort_web
    from parity.core.ort_session import require_onnx_file
    from parity.judge.detect import spec_for_graph
    from parity.judge.verdict import choose_verdict

    require_onnx_file(Path(args.model))
    if args.list_scopes:
        return _list_scopes(Path(args.model))
    config = config_from(args)
    use_adapter(config.webgpu_adapter)
    use_ort_web(config.ort_web)
    facts = kokoro_file(Path(args.model))
    choice = choose_verdict(facts, config.precision)
    spec = spec_for_graph(spec_from(config), facts, config.detect)
    print(facts.describe())
    print(f"  {choice.describe()}")
    print(f"  PyTorch: {spec.label()}" + _detected(config.detect))
    if config.provider != "cpu":
        where = "" if config.provider in CPU_PROVIDERS else " (docs/webgpu.md)"
        print(f"  runs on: {runs_on(config.provider)}{where}")
    inputs = run_inputs(config)
    model = build_model(spec)
    walk = bool(args.intermediate or args.module)  # for a file of any precision
    if choice.precision == "quantized" and not walk:
        return _report_results(args, [_compare_quantized(args, config, model, inputs)])
    requests = [
        inputs.case(name, model.vocab)
        if name in inputs.cases
        else inputs.case_for(name, model.vocab)
        for name in requested(args, inputs, cases=True)
    ]
    results: list[object]
    if args.ops:
        results = [_replay_ops(args, config, model, requests[0], args.ops)]
    elif walk:
        results = _compare_intermediate(args, config, model, requests, choice.precision)
        first = next((r.first_failure for r in results if r.first_failure), None)  # type: ignore[attr-defined]
        if first is not None and config.provider not in CPU_PROVIDERS:
            # A module out on a browser backend: name the kernels inside it that differ.
            results.append(_replay_ops(args, config, model, requests[0], first.module))
    else:
        from parity.judge.verdict import judge_float

        results = list(
            judge_float(
                model,
                Path(args.model),
                requests,
                choice,
                threads=config.threads,
                runs=run_store(args),
                scopes=config.scopes,
                max_gain_db=config.max_gain_db,
                provider=config.provider,
            )
        )
    return _report_results(args, results)


def _report_results(args: argparse.Namespace, results: list[object]) -> int:
    for result in results:
        print(result.report())  # type: ignore[attr-defined]
    write_json(args, results)
    return 0 if all(results) else 1


def _detected(detect: frozenset[str]) -> str:
    return f" ({' and '.join(sorted(detect))} as the file was exported)" if detect else ""


def _compare_quantized(
    args: argparse.Namespace, config: ParityConfig, model: object, inputs: InputSet
) -> object:
    """The four-axis verdict on the held-out sentences in the trained voices."""
    from parity.builders.voices import load_voices
    from parity.judge.verdict import judge_quantized_file

    voices = load_voices()
    requests = voices.held_out(
        inputs, config.held_out_voices, installed_only="node" in config.without
    )
    if args.requests:  # a few held-out sentences, where a whole set would take too long
        keys = set(requested(args, inputs))
        requests = [r for r in requests if r.name.split("/")[0] in keys]
        if not requests:
            raise ParityError(
                f"compare: a quantized file is judged on held-out sentences in the trained "
                f"voices; none of {sorted(keys)} is one (they are: {', '.join(inputs.held_out)})"
            )
        print(
            f"  figures on {len(requests)} held-out request(s); QUANTIZED_FILE's bounds were "
            "set on the whole held-out set"
        )
    if config.reference is not None:
        kokoro_file(config.reference)
    quality, gain = judge_quantized_file(
        Path(args.model).name,
        model,
        Path(args.model),
        requests,
        reference=config.reference,
        runs=run_store(args),
        provider=config.provider,
    )
    against = config.reference or "PyTorch float32"
    print(f"  reference: {against}")
    print(f"  output {gain.describe()}; the figures below are without it")
    return quality


def _compare_intermediate(
    args: argparse.Namespace,
    config: ParityConfig,
    model: object,
    requests: Sequence[KokoroInput],
    precision: str,
) -> list[object]:
    from parity.judge.boundaries import IntermediateSession
    from parity.judge.localize import compare_intermediates
    from parity.judge.tolerances import FP16_INTERMEDIATE, INTERMEDIATE

    runs = run_store(args)
    session = IntermediateSession.for_kokoro(
        Path(args.model),
        model,
        requests[0],
        modules=args.module or (),
        threads=config.threads,
        runs=runs,
        overrides=config.scopes,
        provider=config.provider,
    )
    tolerance = FP16_INTERMEDIATE if precision == "fp16" else INTERMEDIATE
    return [compare_intermediates(model, session, request, tolerance) for request in requests]


def _replay_ops(
    args: argparse.Namespace,
    config: ParityConfig,
    model: object,
    request: KokoroInput,
    target: str,
) -> object:
    from parity.judge.op_replay import module_scope, replay_scope
    from parity.judge.tolerances import OP_REPLAY

    runs = run_store(args)
    scope = module_scope(
        Path(args.model), model, request, target, runs=runs, overrides=config.scopes
    )
    return replay_scope(
        Path(args.model),
        scope,
        request,
        OP_REPLAY,
        provider=config.provider,
        threads=config.threads,
        runs=runs,
    )


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


def add_commands(commands: Any) -> None:
    """``parity export`` and ``parity compare``."""
    export = commands.add_parser("export", help="export Kokoro to ONNX")
    add_table_options(export, "export")
    add_output(export, "OUT.onnx", "the ONNX file to write")
    export.set_defaults(run=_export)

    compare = commands.add_parser(
        "compare",
        help="judge any Kokoro ONNX file against PyTorch by the verdict of its precision",
    )
    compare.add_argument("model", metavar="MODEL.onnx")
    add_table_options(compare, "compare")
    add_requests(compare, "cases", old=("--case",))
    add_json(compare, "the results")
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
        "--ops",
        metavar="MODULE",
        help="replay every op of this module (dotted path or graph scope) alone on ORT CPU from "
        "the values --provider fed it, and name the ops whose kernels differ (after "
        "--intermediate on a browser provider, its first module out is replayed)",
    )
    compare.add_argument(
        "--list-scopes", action="store_true", help="list the graph's node scopes and exit"
    )
    compare.set_defaults(run=_compare)


def add_stft(commands: Any) -> None:
    """``parity stft``."""
    stft = commands.add_parser("stft", help="how far ours and kokoro's STFT are from torch.stft")
    stft.add_argument("--n-fft", type=int, default=20, help="Default: %(default)s (Kokoro's)")
    stft.add_argument("--hop-length", type=int, default=5, help="Default: %(default)s")
    stft.add_argument("--win-length", type=int, default=None, help="Default: n_fft")
    stft.add_argument(
        "--length", type=int, default=2000, help="signal length. Default: %(default)s"
    )
    stft.set_defaults(run=_stft)
