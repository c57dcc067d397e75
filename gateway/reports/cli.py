"""`clienttrack report --firm D --format F --period P [--status S] [-o FILE]`:
the same reports as by mail, for a firm's administrator at a shell.

The file goes to FILE (``-`` for standard output), or by default to a
name made from the firm, format and dates in the current directory. It
is written beside its destination and renamed into place when complete,
so a failed report never leaves half a file, and it is readable by its
owner only: it holds clients' names and payments. The summary goes to standard
output (standard error when the file does), and a progress bar to
standard error when that is a terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from gateway.core import db, directory
from gateway.core.clock import system_clock
from gateway.reports import customers
from gateway.reports.grammar import FORMATS, STATUSES, GrammarError, parse_report_args
from gateway.reports.periods import PeriodError
from gateway.reports.progress import ProgressBar

if TYPE_CHECKING:
    from gateway.reports.export import Report

STDOUT = "-"


def add_parser(subparsers, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `report`; ``common`` adds the options every command takes (--config, --data-dir...)."""
    parser = subparsers.add_parser("report", help="payment history as a file for Excel or accounting software")
    common(parser)
    parser.add_argument("--firm", required=True, metavar="DOMAIN")
    parser.add_argument("--format", required=True, metavar="FORMAT", help=f"{', '.join(FORMATS)} (or excel)")
    parser.add_argument("--period", required=True, metavar="PERIOD",
                        help="today, last-month, this-quarter, last-30-days, 2026, 2026-03, 2026-03-01..2026-03-31 ...")
    parser.add_argument("--status", metavar="STATUS", help=f"{', '.join(STATUSES)} (default all)")
    parser.add_argument("-o", "--output", metavar="FILE", help="where to write the file; - for standard output")
    parser.set_defaults(run=cmd_report)


def add_customers_parser(firm_actions, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """`clienttrack firm customers DOMAIN import FILE`: the firm's QuickBooks customer list."""
    parser = firm_actions.add_parser("customers", help="import the firm's QuickBooks customer list (for IIF)")
    common(parser)
    parser.add_argument("domain")
    parser.add_argument("action", choices=["import"])
    parser.add_argument("file", metavar="FILE", help="QuickBooks' customer list export: IIF, or CSV with "
                                                     "Customer and Email columns")
    parser.set_defaults(run=cmd_firm_customers)


def cmd_firm_customers(args: argparse.Namespace, settings) -> int:
    try:
        pairs = customers.read_customer_list(Path(args.file).read_bytes())
    except (OSError, customers.CustomerListError) as exc:
        print(f"clienttrack: {args.file}: {exc}", file=sys.stderr)
        return 2

    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        done = await customers.import_list(firm, pairs)
        print(f"{firm.domain}: {done.added} customers added, {done.changed} renamed, {done.skipped} rows skipped "
              "(no email address, or a name over 41 characters).")
        return 0

    return db.run(settings, work)


def cmd_report(args: argparse.Namespace, settings) -> int:
    # Here, not at the top: every `clienttrack` command builds this parser,
    # and the writers (openpyxl's above all) are a third of the CLI's imports.
    from gateway.reports.export import period_of, selection_of

    words = [args.format, args.period] + ([args.status] if args.status else [])
    try:
        spec = parse_report_args(words)
    except GrammarError as exc:
        print(f"clienttrack: {exc}", file=sys.stderr)
        return 2

    async def work() -> int:
        firm = await directory.get_firm(args.firm)
        try:
            period = period_of(firm, spec, system_clock())
        except PeriodError as exc:
            print(f"clienttrack: {exc}", file=sys.stderr)
            return 2
        bar = None
        if sys.stderr.isatty():
            bar = ProgressBar(await selection_of(firm, spec, period).count(), sys.stderr)
        try:
            report = await _write(firm, spec, period, args.output, bar)
        except OSError as exc:
            print(f"clienttrack: cannot write the report: {exc}", file=sys.stderr)
            return 1
        if bar is not None:
            bar.finish()
        to_stdout = args.output == STDOUT
        print(report.text, file=sys.stderr if to_stdout else sys.stdout)
        return 0

    return db.run(settings, work)


def _with_extension(path: Path, extension: str) -> Path:
    return path if path.suffix.lower() == f".{extension}" else path.with_suffix(f".{extension}")


async def _write(firm, spec, period, output: str | None, bar: ProgressBar | None) -> Report:
    from gateway.reports.export import run_report

    on_rows = bar.advance if bar is not None else (lambda count: None)
    if output == STDOUT:
        report = await run_report(firm, spec, period, sys.stdout.buffer, on_rows)
        sys.stdout.buffer.flush()
        return report
    folder = Path(output).parent if output else Path.cwd()
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".clienttrack-report-")
    try:
        with os.fdopen(handle, "wb") as out:
            report = await run_report(firm, spec, period, out, on_rows)
        # The name carries the real extension, known once written (qbo and xero may zip): a
        # "-o report.qbo" (Intuit's Web Connect extension, which this CSV is not) becomes report.csv.
        destination = _with_extension(Path(output), report.written.extension) if output else folder / report.filename
        os.replace(temporary, destination)
    except BaseException:
        os.unlink(temporary)
        raise
    print(f"Wrote {destination}", file=sys.stderr)
    return report
