"""Xero bank statement CSV: *Date, *Amount, Payee, Description, Reference.

The columns of Xero's statement import (starred ones required), dates as
DD/MM/YYYY in the firm's timezone. Xero asks for at most 1,000 lines a
file, and a bank account holds one currency, so a longer report, or one
with several currencies, comes as a zip of such files (a payment's lines
stay in one file). Xero reads the file as data, never as a spreadsheet, so
client text goes in as typed: no apostrophe before a leading = or +.

Lines mirror the payment provider's balance, the account the firm
reconciles them in: each paid request is a receipt of the total charged
from the client on the day it was paid, followed by a spend of the
provider's and platform's fees when there are any. The reference is the
invoice number (or the request's, when there is none), so Xero's
reconciliation can match the invoice.
"""

from __future__ import annotations

from typing import BinaryIO, Iterable

from gateway.reports.rows import Row, money
from gateway.reports.writers import bankfiles
from gateway.reports.writers.base import Context, Written

HEADER = ["*Date", "*Amount", "Payee", "Description", "Reference"]
LINES_PER_FILE = 1000


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    return bankfiles.write(rows, out, context, program="xero", header=HEADER, lines=_lines, limit=LINES_PER_FILE)


def _lines(row: Row) -> list[list[str]]:
    day = row.paid.strftime("%d/%m/%Y")
    reference = row.invoice or f"CT{row.id}"
    description = f"Invoice {row.invoice} (request {row.id})" if row.invoice else f"Request {row.id}"
    lines = [[day, str(money(row.total_minor, row.currency)), row.client, description, reference]]
    if row.fees_minor:
        payee = row.provider.capitalize() or "Payment provider"
        lines.append([day, str(money(-row.fees_minor, row.currency)), payee, f"Payment fees (request {row.id})", reference])
    return lines
