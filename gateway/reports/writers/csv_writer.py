"""CSV: RFC 4180 (comma, double quotes, CRLF), UTF-8 with a byte-order
mark so that Excel shows accents. Amounts are plain decimals ("1250.00"),
times the firm's wall clock ("2026-03-15 10:30:00"), which Excel reads
as dates."""

from __future__ import annotations

import csv
import io
from typing import BinaryIO, Iterable

from gateway.reports.rows import Row, money
from gateway.reports.writers.base import CSV, Context, Written
from gateway.reports.writers.injection import neutralise
from gateway.reports.writers.table import DATE, DATETIME, DEPOSIT, MONEY, POSITIONS, TEXT, headers, values

_TEXT, _MONEY, _DATETIME, _DATE = (POSITIONS[kind] for kind in (TEXT, MONEY, DATETIME, DATE))
_DEPOSIT = POSITIONS[DEPOSIT]


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    # utf-8-sig writes the byte-order mark before the first byte of text.
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    try:
        writer = csv.writer(text, dialect="excel")  # the excel dialect is RFC 4180's
        writer.writerow(headers(context.period.zone.key))
        for row in rows:
            writer.writerow(_cells(row))
    finally:
        text.flush()
        text.detach()  # the caller's file stays open
    return Written("csv", CSV)


def _cells(row: Row) -> list:
    cells = values(row)
    for i in _TEXT:
        cells[i] = neutralise(cells[i])
    for i in _MONEY:
        if cells[i] is not None:
            cells[i] = money(cells[i], row.currency)
    for i in _DEPOSIT:
        if cells[i] is not None:
            cells[i] = money(cells[i], row.settlement_currency)
    for i in _DATETIME:
        if cells[i] is not None:
            cells[i] = cells[i].replace(tzinfo=None).isoformat(" ", "seconds")
    for i in _DATE:
        if cells[i] is not None:
            cells[i] = cells[i].isoformat()
    return cells
