"""``parity`` on the command line: the routines of the pytest plugin, for use outside pytest.

One module per command group; each adds its subcommands to the parser built here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from parity.cli import convert_commands, fp32, measure, report, search
from parity.core.errors import ParityError
from parity.core.tally import TALLY


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parity", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fp32.add_commands(commands)
    convert_commands.add_fp16(commands)
    convert_commands.add_quantize(commands)
    search.add_sensitivity(commands)
    convert_commands.add_weights(commands)
    report.add_report(commands)
    measure.add_bench(commands)
    measure.add_profile(commands)
    search.add_optimize(commands)
    fp32.add_stft(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = TALLY.snapshot()
    try:
        code = int(args.run(args))
    except ParityError as error:
        print(f"parity: error: {error}", file=sys.stderr)
        return 2
    tally = TALLY.since(start)
    if tally.kinds:  # what the pytest summary's "cache" line says, for this command
        print(f"parity: {tally.line()}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
