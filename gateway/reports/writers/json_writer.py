"""JSON: one object with the report's scope and a list of requests.

Times are ISO 8601 with their offset, in the firm's timezone
("2026-03-15T10:30:00-04:00"); amounts are decimal strings ("1250.00")
so no reader turns money into a float; unknown values are null. The
request keys match `clienttrack requests list --json` where they overlap.
Written a request at a time, never built whole in memory.
"""

from __future__ import annotations

import json
from typing import BinaryIO, Iterable

from gateway.reports.rows import Row, money
from gateway.reports.writers.base import Context, Written
from gateway.reports.writers.table import COLUMNS, DATE, DATETIME, DEPOSIT, MONEY, values

MEDIA_TYPE = "application/json"


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    period = context.period
    head = {
        "firm": context.firm_domain,
        "timezone": period.zone.key,
        "period": {
            "word": period.word,
            "first_day": period.first_day.isoformat(),
            "last_day": period.last_day.isoformat(),
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        },
        "status": context.status,
    }
    # The head without its closing brace, then the requests one by one.
    out.write(_encode(head)[:-1] + b', "requests": [')
    separator = b"\n"
    for row in rows:
        out.write(separator + _encode(_request(row)))
        separator = b",\n"
    out.write(b"\n]}\n")
    return Written("json", MEDIA_TYPE)


def _request(row: Row) -> dict:
    item = {}
    for column, value in zip(COLUMNS, values(row)):
        if value is not None:
            if column.kind == MONEY:
                value = str(money(value, row.currency))
            elif column.kind == DEPOSIT:
                value = str(money(value, row.settlement_currency))
            elif column.kind in (DATETIME, DATE):
                value = value.isoformat()
        item[column.key] = value
    return item


def _encode(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")
