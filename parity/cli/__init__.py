"""``parity`` on the command line: the routines of the pytest plugin, for use outside pytest.

One module per command group; each adds its subcommands to the parser built here, in the one
grammar of ``parity.cli.grammar``. Exit codes: 0 passed, 1 a gate failed, 2 bad input (one
line), 3 an internal error (the traceback, then one line on reporting it).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from parity.cli import convert_commands, fp32, measure, report, search
from parity.core.errors import ParityError
from parity.core.node_side import current_adapter, current_ort_web, use_adapter, use_ort_web
from parity.core.ort_session import effective_threads, use_threads
from parity.core.tally import TALLY

EXIT_PASSED, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL_ERROR = 0, 1, 2, 3


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
    before = effective_threads(0), current_adapter(), current_ort_web()
    try:
        use_threads(getattr(args, "threads", 0) or 0)
        code = int(args.run(args))
    except ParityError as error:
        print(f"parity: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a path the command cannot read or write: bad input, not a bug
        where = f" {error.filename}" if error.filename else ""
        print(
            f"parity: error:{where}: {error.strerror or error}; check the path and its permissions",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except Exception as error:  # a crash must not read as a failed gate (exit 1)
        traceback.print_exc()
        print(
            f"parity: internal error ({type(error).__name__}) in `parity {args.command}`; this "
            "is a bug in parity, not a verdict on the model: please report it with the "
            "traceback above and the command line",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR
    finally:
        # The caller's settings (an in-process test, a pytest run) are its own.
        use_threads(before[0])
        use_adapter(before[1])
        use_ort_web(before[2])
    tally = TALLY.since(start)
    if tally.kinds:  # what the pytest summary's "cache" line says, for this command
        print(f"parity: {tally.line()}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
