"""QuickBooks Desktop IIF: each paid request a GENERAL JOURNAL entry.

Tab-separated, with the !TRNS / !SPL / !ENDTRNS header lines; the first
line of an entry is TRNS, the others SPL, then ENDTRNS. The lines of an
entry sum to zero (ledger.entry checks it); debits are positive. Dates
are MM/DD/YYYY, the day paid in the firm's timezone (QuickBooks reads
IIF dates in the computer's date order: month first is the usual one).
QuickBooks wants a customer on accounts-receivable lines, and posts the
payment to that customer's balance: the request's customer= directive, else
the firm's imported customer list (reports/customers.py), else, flagged in
the summary, the client's address (QuickBooks would make it a new
customer). IIF cannot link a payment to the invoice it pays: the firm
applies it in QuickBooks (see the README). Client and invoice text that
would start a formula is neutralised (injection.py), as in CSV. The file is
Windows-1252 with CRLF line ends, for a Windows program; characters that
encoding lacks become "?".

A journal posts in the firm's currency: payments in another currency are
left out and the summary says so.
"""

from __future__ import annotations

from typing import BinaryIO, Iterable

from gateway.reports import ledger
from gateway.reports.rows import Row, money
from gateway.reports.writers import notes
from gateway.reports.writers.base import Context, Written
from gateway.reports.writers.injection import neutralise

MEDIA_TYPE = "application/x-iif"
TRANSACTION_TYPE = "GENERAL JOURNAL"
_FIELDS = ("TRNSID", "TRNSTYPE", "DATE", "ACCNT", "NAME", "AMOUNT", "DOCNUM", "MEMO")
_HEADER = ["!TRNS\t" + "\t".join(_FIELDS), "!SPL\tSPLID\t" + "\t".join(_FIELDS[1:]), "!ENDTRNS"]
_NAME_LENGTH = 41  # QuickBooks' limit for customer names
_DOCNUM_LENGTH = 11  # QuickBooks' limit for a journal entry number
_MEMO_LENGTH = 200
_CONTROL = str.maketrans({"\t": " ", "\r": " ", "\n": " ", '"': "'"})


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    accounts = ledger.accounts(context.ledger_accounts, "iif")
    tally = notes.Tally("iif", context.firm_currency, one_currency=True)
    by_address = 0
    _lines(out, _HEADER)
    for row in rows:
        if not tally.keep(row):
            continue
        customer = row.customer or context.customers.get(row.client.lower(), "")
        if not customer:
            by_address += 1
            customer = row.client
        _lines(out, _entry(row, accounts, customer))
    found = [*tally.notes(), *ledger.accounts_note("iif", context.firm_domain, accounts)]
    if by_address:
        found.append(
            f"{by_address} payment{'s' if by_address != 1 else ''} went to a customer named by the client's "
            "address: neither a customer= directive nor the firm's customer list named them, and QuickBooks "
            "will make each a new customer. Import your QuickBooks customer list with: clienttrack firm "
            f"customers {context.firm_domain} import FILE, then run the report again.")
    return Written("iif", MEDIA_TYPE, tuple(found))


def _entry(row: Row, accounts: dict[str, str], customer_name: str) -> list[str]:
    day = row.paid.strftime("%m/%d/%Y")
    docnum = _text(ledger.reference(row, _DOCNUM_LENGTH))
    client = _text(row.client)
    memo = _field(f"ClientTrack request {row.id}: invoice {_text(row.invoice or '-')}, {client}")[:_MEMO_LENGTH]
    customer = _text(customer_name)[:_NAME_LENGTH]
    lines = []
    for position, (account, minor) in enumerate(ledger.entry(row, accounts)):
        name = customer if account == accounts["receivable"] else ""
        kind = "TRNS" if position == 0 else "SPL"
        amount = str(money(minor, row.currency))
        lines.append("\t".join((kind, "", TRANSACTION_TYPE, day, _field(account), name, amount, docnum, memo)))
    lines.append("ENDTRNS")
    return lines


def _field(text: str) -> str:
    """IIF has no escaping: tabs and line ends would split the field, quotes confuse its reader."""
    return text.translate(_CONTROL).strip()


def _text(text: str) -> str:
    """Client or staff text: a field, and no formula when QuickBooks' data
    lands in a spreadsheet (see injection.py)."""
    return neutralise(_field(text))


def _lines(out: BinaryIO, lines: list[str]) -> None:
    out.write("".join(line + "\r\n" for line in lines).encode("cp1252", errors="replace"))
