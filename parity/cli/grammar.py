"""The command line's one grammar (docs/options.md), shared by every subcommand: inputs are
positional; ``-o/--output FILE`` names a file written, ``--out-dir DIR`` a folder; one
``--requests`` selector picks what is spoken; ``--json FILE`` writes the result. Earlier
spellings still work for one release, each with one deprecation line on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from parity.core.errors import ParityError

# What ``--requests`` takes besides entry names: the input set's named sets.
REQUEST_SETS = ("selection", "held-out", "calibration", "cases")


class OldSpelling(argparse.Action):
    """An earlier spelling of a flag: stored where the new one stores, with a deprecation line."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        *,
        new: str,
        appends: bool = False,
        **kwargs: Any,
    ):
        self.new, self.appends = new, appends
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        deprecated(f"{option_string} is deprecated; use {self.new}")
        if self.appends:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


def deprecated(line: str) -> None:
    print(f"parity: {line} (the old spelling goes in the next release)", file=sys.stderr)


def add_output(
    parser: argparse.ArgumentParser,
    metavar: str,
    help_text: str,
    *,
    required: bool = True,
    old_flag: str | None = None,
    old_positional: bool = False,
) -> None:
    """``-o/--output FILE``; a required one is checked by ``output_of``, so an earlier
    positional output can still stand in for it."""
    shown = f"{help_text} (required)" if required else help_text
    parser.add_argument("-o", "--output", metavar=metavar, help=shown)
    if old_flag is not None:
        parser.add_argument(old_flag, dest="output", action=OldSpelling, new="-o/--output")
    if old_positional:
        parser.add_argument("old_output", nargs="?", metavar=metavar, help=argparse.SUPPRESS)


def output_of(args: argparse.Namespace) -> str:
    """The file a command writes: ``-o``, or the earlier positional spelling."""
    old = getattr(args, "old_output", None)
    if old is not None:
        if args.output is not None:
            raise ParityError(f"{args.command}: two outputs ({old} and -o {args.output}); give -o")
        deprecated(f"{args.command}: the output as a second positional is deprecated; use -o")
        return str(old)
    if args.output is None:
        raise ParityError(f"{args.command}: name the file to write with -o/--output")
    return str(args.output)


def add_out_dir(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--out-dir DIR``, required (checked by ``out_dir_of``, so the earlier spelling
    ``--out DIR`` can still stand in for it)."""
    parser.add_argument("--out-dir", metavar="DIR", help=f"{help_text} (required)")
    parser.add_argument("--out", dest="out_dir", action=OldSpelling, new="--out-dir")


def out_dir_of(args: argparse.Namespace) -> str:
    if args.out_dir is None:
        raise ParityError(f"{args.command}: name the folder to write with --out-dir DIR")
    return str(args.out_dir)


def add_requests(
    parser: argparse.ArgumentParser,
    default: str,
    *,
    old: Sequence[str] = (),
) -> None:
    """``--requests``: entry names (repeatable, or comma-separated) or a named set."""
    parser.add_argument(
        "--requests",
        action="append",
        metavar="NAMES",
        help="phoneme entries to speak: names (repeatable or a,b) or a set "
        f"({', '.join(REQUEST_SETS)}). Default: {default}",
    )
    for flag in old:
        parser.add_argument(
            flag, dest="requests", action=OldSpelling, new="--requests", appends=True
        )
    parser.set_defaults(requests_default=default)


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", metavar="OUT.json", help=f"write {what} as JSON")


def write_json(args: argparse.Namespace, result: object) -> None:
    """``result`` (a dataclass, or a list of them) to ``--json``'s file, atomically."""
    if args.json:
        import json
        from pathlib import Path

        from parity.core.cache import write_text_atomic
        from parity.core.jsonable import to_jsonable

        write_text_atomic(Path(args.json), json.dumps(to_jsonable(result), indent=2))


def requested(args: argparse.Namespace, inputs: Any, *, cases: bool = False) -> tuple[str, ...]:
    """What ``--requests`` names, sets expanded, in the order given: phoneme entries, with a
    case name read as its entry; or, with ``cases`` (compare), case names kept as they are, so
    each speaks in its own style. One line for a name the inputs lack."""
    given = args.requests or [args.requests_default]
    names: list[str] = []
    for value in given:
        for part in (piece.strip() for piece in str(value).split(",")):
            if part:
                names.extend(_expand(part, inputs))
    unknown = [n for n in names if n not in inputs.phonemes and n not in inputs.cases]
    if not cases:
        names = [inputs.cases[n][0] if n in inputs.cases else n for n in names]
    if unknown or not names:
        known = ", ".join(dict.fromkeys([*REQUEST_SETS, *inputs.cases, *inputs.phonemes]))
        raise ParityError(
            f"{args.command}: --requests {unknown[0] if unknown else ''!r} names no phoneme "
            f"entry of the inputs; use one of {known}"
        )
    return tuple(dict.fromkeys(names))


def _expand(part: str, inputs: Any) -> tuple[str, ...]:
    sets = {
        "selection": inputs.selection,
        "held-out": inputs.held_out,
        "calibration": inputs.calibration,
        "cases": tuple(inputs.cases),
    }
    return tuple(sets.get(part, (part,)))
