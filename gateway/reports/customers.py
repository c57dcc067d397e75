"""Which QuickBooks customer a client is: the NAME the IIF export posts a
payment to, so that QuickBooks applies it to that customer's balance.

In order: the request's own ``customer=`` directive; the firm's customer
list, imported from QuickBooks' own export (``clienttrack firm customers
DOMAIN import FILE``); and only as a last resort the client's address,
which QuickBooks then takes for a new customer: the summary counts those
so the firm can fix them.

QuickBooks Desktop exports its customer list two ways, both read here:
File > Utilities > Export > Lists to IIF Files (a ``!CUST`` header line
naming the fields, ``CUST`` lines with NAME and EMAIL), and the Customer
Center's Excel > Export Customer List as a CSV file (a header row with a
name column, "Customer" or "Name", and an email column, "Email" or
"Main Email").
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from gateway.core.models import CustomerName, Firm

NAME_LENGTH = 41  # QuickBooks' limit for a customer name
_NAME_HEADERS = ("customer", "name", "customer name", "display name")
_EMAIL_HEADERS = ("email", "main email", "e-mail", "email address")


class CustomerListError(ValueError):
    """The file is not a customer list we can read; the message says why."""


@dataclass(frozen=True)
class Imported:
    added: int
    changed: int
    skipped: int  # rows without an address, or with a name too long for QuickBooks


def read_customer_list(data: bytes) -> list[tuple[str, str]]:
    """(address, name) pairs from a QuickBooks customer list export (IIF or CSV)."""
    text = _decode(data)
    if text.lstrip().startswith("!CUST"):
        return _from_iif(text)
    return _from_csv(text)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):  # QuickBooks writes Windows-1252; Excel may add a BOM
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CustomerListError("the file is neither UTF-8 nor Windows-1252 text")


def _from_iif(text: str) -> list[tuple[str, str]]:
    fields: list[str] = []
    pairs = []
    for line in text.splitlines():
        cells = line.split("\t")
        if cells[0] == "!CUST":
            fields = [c.strip().upper() for c in cells[1:]]
        elif cells[0] == "CUST" and fields:
            row = dict(zip(fields, cells[1:]))
            pairs.append((row.get("EMAIL", ""), row.get("NAME", "")))
    if not fields or "NAME" not in fields or "EMAIL" not in fields:
        raise CustomerListError("the IIF file has no !CUST line with NAME and EMAIL fields")
    return pairs


def _from_csv(text: str) -> list[tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise CustomerListError("the file is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    name = next((header.index(h) for h in _NAME_HEADERS if h in header), None)
    email = next((header.index(h) for h in _EMAIL_HEADERS if h in header), None)
    if name is None or email is None:
        raise CustomerListError("the first row must name a customer column (Customer or Name) and an email "
                                "column (Email or Main Email), as QuickBooks' Export Customer List writes them")
    return [(row[email], row[name]) for row in rows[1:] if len(row) > max(name, email)]


async def import_list(firm: Firm, pairs: list[tuple[str, str]]) -> Imported:
    """Store the firm's customers by address; a later import updates names."""
    existing = {c.client_email: c for c in await CustomerName.filter(firm=firm)}
    added = changed = skipped = 0
    for raw_email, raw_name in pairs:
        # QuickBooks allows several addresses in one field: "a@x.ca; b@x.ca".
        emails = [e.strip().lower() for e in raw_email.replace(",", ";").split(";") if "@" in e]
        name = " ".join(raw_name.split())
        if not emails or not name or len(name) > NAME_LENGTH:
            skipped += 1
            continue
        for email in emails:
            known = existing.get(email)
            if known is None:
                existing[email] = await CustomerName.create(firm=firm, client_email=email, name=name)
                added += 1
            elif known.name != name:
                known.name = name
                await known.save(update_fields=["name"])
                changed += 1
    return Imported(added, changed, skipped)


async def names_of(firm_id: int) -> dict[str, str]:
    """The firm's customer names by client address, for the IIF export."""
    return dict(await CustomerName.filter(firm_id=firm_id).values_list("client_email", "name"))
