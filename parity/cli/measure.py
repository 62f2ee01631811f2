"""``parity bench``: real-time factor on ONNX Runtime CPU, WebAssembly and WebGPU."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from parity.cli.common import add_table_options, config_from, inputs_dir, kokoro_file
from parity.cli.grammar import add_json, add_requests, requested, write_json
from parity.core.errors import ParityError


def _bench(args: argparse.Namespace) -> int:
    from parity.core.inputs import load_input_set
    from parity.core.node_side import session_unavailable, use_adapter
    from parity.core.spec import load_config
    from parity.measure.bench import BENCH_PROVIDERS, measure, write_records
    from parity.measure.wasm import wasm_unavailable

    named = [_named_model(spec) for spec in args.models]
    models = dict(named)
    if len(models) < len(named):
        raise ParityError("bench: two models share a name; name them NAME=MODEL.onnx")
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    unknown = sorted(set(providers) - set(BENCH_PROVIDERS))
    if unknown:
        raise ParityError(f"bench: unknown provider(s) {unknown}; use {', '.join(BENCH_PROVIDERS)}")
    use_adapter(config_from(args).webgpu_adapter)
    inputs = load_input_set(inputs_dir(args))
    vocab = load_config("full")["vocab"]
    requests = [inputs.case_for(key, vocab) for key in requested(args, inputs)]
    records = []
    for provider in providers:
        reason = (
            wasm_unavailable() if provider.startswith("wasm")
            else session_unavailable(provider) if provider == "webgpu"
            else None
        )  # fmt: skip
        if reason is not None:
            print(f"{provider}: skipped ({reason})")
            continue
        records += measure(models, provider, requests, repeats=args.repeats)
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
    from parity.core.inputs import load_input_set
    from parity.core.spec import load_config
    from parity.measure.op_profile import profile

    _, model = _named_model(args.model)
    inputs = load_input_set(inputs_dir(args))
    vocab = load_config("full")["vocab"]
    requests = [inputs.case_for(key, vocab) for key in requested(args, inputs)]
    # The first request runs twice: once untimed, so the rows hold no first-run allocation.
    result = profile(model, args.profile_provider, [requests[0], *requests], warmup=1)
    print(result.table(top=args.top))
    write_json(args, result)
    if args.json:
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
        "bench",
        help="real-time factor of models on ONNX Runtime CPU, WebAssembly and WebGPU (in "
        "headless Chromium; a software adapter's time is labelled as not a GPU's)",
    )
    bench.add_argument("models", nargs="+", metavar="[NAME=]MODEL.onnx")
    bench.add_argument(
        "--providers",
        default="cpu,cpu-1t,wasm",
        help="comma-separated, from cpu, cpu-1t, wasm, wasm-2t, webgpu. Default: %(default)s",
    )
    bench.add_argument("--repeats", type=int, default=5, help="interleaved. Default: %(default)s")
    add_requests(bench, "sentence", old=("--sentence",))
    add_table_options(bench, "bench")
    add_json(bench, "the records (and a plot beside, OUT.png)")
    bench.set_defaults(run=_bench)


def add_profile(commands: Any) -> None:
    profile = commands.add_parser(
        "profile", help="where a model's time goes, per op type and module (CPU or WebAssembly)"
    )
    profile.add_argument("model", metavar="MODEL.onnx")
    profile.add_argument(
        "--provider",
        # Its own dest: profile times on bench's providers (threads pinned), not on the
        # option table's judging providers (cpu, wasm, webgpu) that compare takes.
        dest="profile_provider",
        default="wasm",
        choices=("cpu", "cpu-1t", "wasm", "wasm-2t"),
        help="Default: %(default)s",
    )
    add_requests(profile, "held-out", old=("--sentences",))
    add_table_options(profile, "profile")
    profile.add_argument("--top", type=int, default=12, help="rows per table. Default: %(default)s")
    add_json(profile, "every row")
    profile.set_defaults(run=_profile)
