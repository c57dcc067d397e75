"""Checkers for the accounting files, written from the vendors' documented
import rules (not from our writers), so a file that breaks a rule fails a
test the way it would fail the import. (No tests here.)

Sage 50 Canadian Edition, general journal import (Sage's "Importing
general journal entries" notes): per entry a header line ``date,"source",
"comment"`` (date mm-dd-yy or mm-dd-yyyy, source at most 13 characters,
comment at most 39), then one line per account ``number,amount`` with the
amount in dollars and cents, debits positive, credits negative; each entry
must balance; an entry may not post to a linked account (Sage refuses the
whole import); Windows text (CRLF).

QuickBooks Desktop IIF (Intuit's IIF import guide): tab-separated; the
header lines ``!TRNS``, ``!SPL`` and ``!ENDTRNS`` name the fields; each
transaction is one TRNS line, its SPL lines and an ENDTRNS line, and its
amounts sum to zero; DATE is MM/DD/YYYY; a customer NAME is at most 41
characters and must be on every accounts-receivable line; DOCNUM at most
11 characters; fields hold no tab, line break or double quote.
"""

from __future__ import annotations

import re
from decimal import Decimal

SAGE_LINKED = {"1200": "Accounts Receivable", "2100": "Accounts Payable"}
_SAGE_HEADER = re.compile(r'^(\d{2}-\d{2}-(?:\d{2}|\d{4})),"([^"]*)","([^"]*)"$')
_SAGE_LINE = re.compile(r"^(\d{4,8}),(-?\d+\.\d{2})$")


class Refused(AssertionError):
    """The vendor's import would refuse this file; the message says why."""


def check_sage(data: bytes, linked: dict[str, str] = SAGE_LINKED) -> list[dict]:
    """The entries of a Sage 50 general journal file; Refused if Sage would refuse it."""
    text = data.decode("cp1252")
    if text and not text.endswith("\r\n"):
        raise Refused("lines must end with CRLF")
    entries: list[dict] = []
    for number, line in enumerate(text.split("\r\n")[:-1], 1):
        if "\n" in line or "\r" in line:
            raise Refused(f"line {number}: a bare line break")
        if header := _SAGE_HEADER.match(line):
            _close_sage(entries)
            date, source, comment = header.groups()
            if len(source) > 13 or len(comment) > 39:
                raise Refused(f"line {number}: source or comment too long")
            entries.append({"date": date, "source": source, "comment": comment, "lines": []})
        elif detail := _SAGE_LINE.match(line):
            if not entries:
                raise Refused(f"line {number}: an account line before any entry")
            account, amount = detail.groups()
            if account in linked:
                raise Refused(f"line {number}: {account} ({linked[account]}) is a linked account")
            entries[-1]["lines"].append((account, Decimal(amount)))
        else:
            raise Refused(f"line {number}: not a Sage general journal line: {line!r}")
    _close_sage(entries)
    return entries


def _close_sage(entries: list[dict]) -> None:
    if entries:
        lines = entries[-1]["lines"]
        if len(lines) < 2 or sum(amount for _, amount in lines) != 0:
            raise Refused(f"entry {entries[-1]['source']} does not balance: {lines}")


_IIF_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")


def check_iif(data: bytes, receivable: str = "Accounts Receivable") -> list[list[dict]]:
    """The transactions of an IIF file; Refused if QuickBooks would refuse it."""
    text = data.decode("cp1252")
    lines = text.split("\r\n")
    if lines[-1] != "":
        raise Refused("lines must end with CRLF")
    heads: dict[str, list[str]] = {}
    transactions: list[list[dict]] = []
    current: list[dict] | None = None
    for number, line in enumerate(lines[:-1], 1):
        cells = line.split("\t")
        kind = cells[0]
        if kind.startswith("!"):
            heads[kind[1:]] = cells[1:]
            continue
        if kind == "ENDTRNS":
            if current is None or sum(Decimal(c["AMOUNT"]) for c in current) != 0:
                raise Refused(f"line {number}: a transaction that does not balance")
            transactions.append(current)
            current = None
            continue
        if kind not in ("TRNS", "SPL") or kind not in heads:
            raise Refused(f"line {number}: {kind!r} without its header line")
        if (kind == "TRNS") != (current is None):
            raise Refused(f"line {number}: TRNS and SPL out of order")
        fields = dict(zip(heads[kind], cells[1:], strict=True))
        if '"' in line:
            raise Refused(f"line {number}: a double quote")
        if not _IIF_DATE.match(fields["DATE"]):
            raise Refused(f"line {number}: DATE {fields['DATE']!r} is not MM/DD/YYYY")
        if len(fields.get("NAME", "")) > 41 or len(fields.get("DOCNUM", "")) > 11:
            raise Refused(f"line {number}: NAME or DOCNUM too long")
        if fields["ACCNT"] == receivable and not fields.get("NAME"):
            raise Refused(f"line {number}: an accounts-receivable line without a customer NAME")
        current = [fields] if kind == "TRNS" else [*current, fields]
    if current is not None:
        raise Refused("a transaction without ENDTRNS")
    if not {"TRNS", "SPL", "ENDTRNS"} <= set(heads):
        raise Refused("the !TRNS, !SPL and !ENDTRNS header lines are missing")
    return transactions
