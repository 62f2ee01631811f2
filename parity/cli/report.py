"""``parity report``: compare two runs' report folders."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.cli.grammar import add_output
from parity.core.errors import ParityError

if TYPE_CHECKING:
    pass


def _report(args: argparse.Namespace) -> int:
    from parity.core.cache import write_text_atomic
    from parity.report.run_diff import compare_reports, render_comparison
    from parity.report.run_report import load_report

    if args.backends:
        from parity.report.backend_table import load_cells, render_cells

        text = render_cells(load_cells(Path(args.backends)))
        print(text, end="")
        if args.output:
            write_text_atomic(Path(args.output), text)
        return 0
    if args.compare:
        old, new = (Path(folder) for folder in args.compare)
        changes = compare_reports(load_report(old), load_report(new))
        text = render_comparison(changes, str(old), str(new))
        print(text, end="")
        if args.output:
            write_text_atomic(Path(args.output), text)
        return 1 if any(change.worse for change in changes) else 0
    if not args.folder:
        raise ParityError("report: name a report folder, or --compare OLD NEW")
    if args.output:
        raise ParityError(
            "report: -o writes a comparison or a backend table; add --compare OLD NEW or "
            "--backends DIR (a folder's summary is written to DIR/summary.md)"
        )
    report = load_report(Path(args.folder))
    text = report.summary_markdown()
    write_text_atomic(Path(args.folder) / "summary.md", text)
    print(text, end="")
    return 1 if report.failures() else 0


def add_report(commands: Any) -> None:
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
    report.add_argument(
        "--backends",
        metavar="DIR",
        help="one table of files by backend from `parity compare --json` runs named "
        "FILE.PROVIDER.json (make webgpu; docs/webgpu.md)",
    )
    add_output(
        report,
        "FILE.md",
        "also write the comparison (or the backend table) here",
        required=False,
        old_flag="--out",
    )
    report.set_defaults(run=_report)
