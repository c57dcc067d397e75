"""One writer per format, each ``write(rows, out, context) -> Written``:
``rows`` an iterable of rows.Row in id order, ``out`` a binary file the
writer must not close."""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterable

from gateway.reports.rows import Row
from gateway.reports.writers import csv_writer, iif, json_writer, qbo, sage, xero, xlsx
from gateway.reports.writers.base import Context, Written

Writer = Callable[[Iterable[Row], BinaryIO, Context], Written]

WRITERS: dict[str, Writer] = {
    "csv": csv_writer.write,
    "xlsx": xlsx.write,
    "json": json_writer.write,
    "iif": iif.write,
    "qbo": qbo.write,
    "xero": xero.write,
    "sage": sage.write,
}
