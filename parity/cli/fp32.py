"""``parity export``, ``parity compare`` (staged fp32 parity, intermediates) and ``parity stft``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.core.errors import ParityError

if TYPE_CHECKING:
    from parity.core.inputs import KokoroInput

from parity.cli.common import recipe_options, spec_from


def _export(args: argparse.Namespace) -> int:
    from parity.builders.export import export_kokoro

    spec = spec_from(args)
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
    spec = spec_from(args)
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


def add_commands(commands: Any) -> None:
    """``parity export`` and ``parity compare``."""
    from parity.builders.export import DEFAULT_OPSET, EXPORTERS

    export = commands.add_parser("export", help="export Kokoro to ONNX")
    recipe_options(export)
    export.add_argument(
        "--exporter", choices=EXPORTERS, default="torchscript", help="Default: %(default)s"
    )
    export.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="Default: %(default)s")
    export.add_argument("-o", "--output", required=True, metavar="OUT.onnx")
    export.set_defaults(run=_export)

    compare = commands.add_parser("compare", help="fp32 parity of an ONNX export against PyTorch")
    compare.add_argument("model", metavar="MODEL.onnx")
    recipe_options(compare)
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
