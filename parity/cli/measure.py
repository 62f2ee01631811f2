"""``parity bench``: real-time factor on ONNX Runtime CPU and WebAssembly."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.cli.common import add_table_options, inputs_dir, kokoro_file
from parity.core.errors import ParityError

if TYPE_CHECKING:
    pass


def _bench(args: argparse.Namespace) -> int:
    from parity.core.inputs import load_input_set
    from parity.core.spec import load_config
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
    inputs = load_input_set(inputs_dir(args))
    if args.sentence not in inputs.phonemes:
        raise ParityError(f"bench: no phoneme entry {args.sentence!r} in {args.inputs}")
    request = inputs.case_for(args.sentence, load_config("full")["vocab"])
    records = []
    for provider in providers:
        reason = wasm_unavailable() if provider.startswith("wasm") else None
        if reason is not None:
            print(f"{provider}: skipped ({reason})")
            continue
        records += measure(models, provider, [request], repeats=args.repeats)
    if not records:
        raise ParityError(
            f"bench: no provider of {', '.join(providers)} could run here (see above); "
            "add cpu to --providers"
        )
    for record in records:
        print(record.line())
    if args.json:
        write_records(Path(args.json), records)
        print(f"wrote {args.json} and {Path(args.json).with_suffix('.png')}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from parity.core.cache import write_text_atomic
    from parity.core.inputs import load_input_set
    from parity.core.jsonable import to_jsonable
    from parity.core.spec import load_config
    from parity.measure.op_profile import profile

    _, model = _named_model(args.model)
    inputs = load_input_set(inputs_dir(args))
    keys = {"held-out": inputs.held_out, "selection": inputs.selection}.get(
        args.sentences, tuple(k.strip() for k in args.sentences.split(",") if k.strip())
    )
    missing = [key for key in keys if key not in inputs.phonemes]
    if missing or not keys:
        raise ParityError(
            f"profile: no phoneme entry {missing[0] if missing else args.sentences!r} in "
            f"{args.inputs}; use held-out, selection or entry names"
        )
    vocab = load_config("full")["vocab"]
    requests = [inputs.case_for(key, vocab) for key in keys]
    # The first request runs twice: once untimed, so the rows hold no first-run allocation.
    result = profile(model, args.provider, [requests[0], *requests], warmup=1)
    print(result.table(top=args.top))
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(to_jsonable(result), indent=1))
        print(f"wrote {args.json}")
    return 0


def _named_model(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named by its stem); the file must be a Kokoro graph."""
    name, _, path = spec.rpartition("=")
    model = Path(path)
    kokoro_file(model)
    return name or model.stem, model


def add_bench(commands: Any) -> None:
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
    add_table_options(bench, "bench")
    bench.add_argument("--json", metavar="OUT.json", help="write the records (and OUT.png)")
    bench.set_defaults(run=_bench)


def add_profile(commands: Any) -> None:
    profile = commands.add_parser(
        "profile", help="where a model's time goes, per op type and module (CPU or WebAssembly)"
    )
    profile.add_argument("model", metavar="MODEL.onnx")
    profile.add_argument(
        "--provider",
        default="wasm",
        choices=("cpu", "cpu-1t", "wasm", "wasm-2t"),
        help="Default: %(default)s",
    )
    profile.add_argument(
        "--sentences",
        default="held-out",
        help="held-out, selection, or comma-separated phoneme entries. Default: %(default)s",
    )
    add_table_options(profile, "profile")
    profile.add_argument("--top", type=int, default=12, help="rows per table. Default: %(default)s")
    profile.add_argument("--json", metavar="OUT.json", help="write every row")
    profile.set_defaults(run=_profile)
