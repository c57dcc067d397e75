"""The columns of the tabular reports (csv, xlsx, json), in order.

Each column says what kind of value it holds, so each writer can render
it its own way: text for CSV, typed cells for XLSX, strings for JSON.
``text`` is typed by people (clients, staff, the provider's ids) and is
neutralised against formula injection; ``word`` is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from gateway.reports.rows import Row

TEXT, WORD, ID, MONEY, DATETIME, DATE = "text", "word", "id", "money", "datetime", "date"
# Money in the deposit currency (Row.settlement_currency), not the row's.
DEPOSIT = "deposit"


@dataclass(frozen=True)
class Column:
    header: str
    key: str  # the JSON name
    kind: str
    # The Row attribute: money in minor units (or None), times in the firm's zone.
    attribute: str


COLUMNS: tuple[Column, ...] = (
    Column("Request ID", "id", ID, "id"),
    Column("Invoice", "invoice", TEXT, "invoice"),
    Column("Client", "client", TEXT, "client"),
    Column("Staff member", "staff", TEXT, "staff"),
    Column("Currency", "currency", WORD, "currency"),
    Column("Amount", "amount", MONEY, "amount_minor"),
    Column("Card fee", "fee", MONEY, "fee_minor"),
    Column("Total charged", "total", MONEY, "total_minor"),
    Column("Provider fee", "provider_fee", MONEY, "provider_fee_minor"),
    Column("Platform fee", "platform_fee", MONEY, "application_fee_minor"),
    Column("Net", "net", MONEY, "net_minor"),
    Column("Refunded", "refunded", MONEY, "refunded_minor"),
    Column("Status", "status", WORD, "status"),
    Column("Created", "created_at", DATETIME, "created"),
    Column("Viewed", "viewed_at", DATETIME, "viewed"),
    Column("Paid", "paid_at", DATETIME, "paid"),
    Column("Deposit date", "deposit_date", DATE, "deposit_date"),
    Column("Provider reference", "provider_ref", TEXT, "provider_ref"),
    Column("Deposit currency", "deposit_currency", WORD, "settlement_currency"),
    Column("Exchange rate", "exchange_rate", WORD, "exchange_rate"),
    Column("Net deposited", "net_deposited", DEPOSIT, "settlement_net_minor"),
    Column("Documents removed", "documents_removed_at", DATETIME, "documents_removed"),
)
# Column positions by kind, so a writer converts a row's values a kind at a time.
POSITIONS: dict[str, tuple[int, ...]] = {
    kind: tuple(i for i, column in enumerate(COLUMNS) if column.kind == kind)
    for kind in (TEXT, WORD, ID, MONEY, DATETIME, DATE, DEPOSIT)
}
_VALUES = attrgetter(*(column.attribute for column in COLUMNS))


def values(row: Row) -> list[Any]:
    """The row's raw values in column order."""
    return list(_VALUES(row))


def headers(zone_name: str) -> list[str]:
    """Headers for people: times say which timezone they are in, amounts
    which currency (the Currency column's: each row's own)."""
    def header(c: Column) -> str:
        if c.kind == DATETIME:
            return f"{c.header} ({zone_name})"
        if c.kind == MONEY:
            return f"{c.header} (in Currency)"
        if c.kind == DEPOSIT:
            return f"{c.header} (in Deposit currency)"
        return c.header
    return [header(c) for c in COLUMNS]
