"""Sage 50 Canadian Edition: a General Journal import file.

Each paid request is one entry: a first line with the date (mm-dd-yy),
the "source" and a "comment", then one detail line per account, the
account number and the amount with a period and two decimals, debits
positive and credits negative. Sage imports nothing unless every entry
balances, so ledger.entry checks each to the cent.

Field lengths are those of Sage's import notes that hold for every
edition we know of: source at most 13 characters, comment at most 39.
Quotes cannot be escaped inside Sage's quoted fields, so they are
dropped. Windows-1252 with CRLF line ends, for a Windows program;
characters that encoding lacks become "?".
A journal posts in the firm's currency: payments in another currency are
left out and the summary says so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import BinaryIO, Iterable

from gateway.core.money import CURRENCY_DECIMALS
from gateway.reports import ledger
from gateway.reports.rows import Row
from gateway.reports.writers import notes
from gateway.reports.writers.base import Context, Written

MEDIA_TYPE = "text/plain"
SOURCE_LENGTH = 13
COMMENT_LENGTH = 39
_CONTROL = str.maketrans({"\t": " ", "\r": " ", "\n": " ", '"': ""})


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    accounts = ledger.accounts(context.ledger_accounts, "sage")
    tally = notes.Tally("sage", context.firm_currency, one_currency=True)
    for row in rows:
        if not tally.keep(row):
            continue
        out.write("".join(line + "\r\n" for line in _entry(row, accounts)).encode("cp1252", errors="replace"))
    return Written("txt", MEDIA_TYPE, (*tally.notes(), *ledger.accounts_note("sage", context.firm_domain, accounts)))


def _entry(row: Row, accounts: dict[str, str]) -> list[str]:
    source = _field(ledger.reference(row, SOURCE_LENGTH))[:SOURCE_LENGTH]
    comment = _field(f"CT{row.id} {row.client}")[:COMMENT_LENGTH]
    lines = [f'{row.paid.strftime("%m-%d-%y")},"{source}","{comment}"']
    decimals = CURRENCY_DECIMALS[row.currency]
    for account, minor in ledger.entry(row, accounts):
        lines.append(f"{_field(account)},{Decimal(minor).scaleb(-decimals):.2f}")
    return lines


def _field(text: str) -> str:
    return text.translate(_CONTROL).strip()
