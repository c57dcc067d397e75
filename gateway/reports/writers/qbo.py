"""QuickBooks Online bank statement CSV: Date, Description, Amount.

The three-column layout QuickBooks Online's "Upload from file" reads, at
most 1,000 lines a file (its limit); a longer report, or one with more
than one currency, comes as a zip of such files.

Lines mirror the payment provider's balance, the account the firm
reconciles them in: each paid request is a deposit of the total charged
on the day it was paid, followed by a withdrawal for the provider's and
platform's fees when there are any. Dates are MM/DD/YYYY in the firm's
timezone (pick that format when uploading). Descriptions start with our
own words, so client text never opens a cell.
"""

from __future__ import annotations

from typing import BinaryIO, Iterable

from gateway.reports.rows import Row, money
from gateway.reports.writers import bankfiles
from gateway.reports.writers.base import Context, Written

HEADER = ["Date", "Description", "Amount"]
LINES_PER_FILE = 1000


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    return bankfiles.write(rows, out, context, program="qbo", header=HEADER, lines=_lines, limit=LINES_PER_FILE)


def _lines(row: Row) -> list[list[str]]:
    day = row.paid.strftime("%m/%d/%Y")
    invoice = f"invoice {row.invoice}, " if row.invoice else ""
    lines = [[day, f"Payment, {invoice}{row.client} (request {row.id})", str(money(row.total_minor, row.currency))]]
    if row.fees_minor:
        lines.append([day, f"Payment fees (request {row.id})", str(money(-row.fees_minor, row.currency))])
    return lines
