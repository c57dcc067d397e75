"""Bank statement lines (QuickBooks Online, Xero) split into files.

A bank account holds one currency, so each currency gets its own file;
a program may also cap the lines a file holds. One file is written as
plain CSV; two or more go into a zip. A payment's lines stay together in
one file. Files are spooled to disk past 1 MiB, and a full file goes into
the zip as soon as it is full, so memory stays small however many rows.
UTF-8 without a byte-order mark: these importers match the header text.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import zipfile
from typing import BinaryIO, Callable, Iterable

from gateway.reports.rows import Row
from gateway.reports.writers import notes
from gateway.reports.writers.base import CSV, ZIP, Context, Written

_SPOOL_BYTES = 1 << 20


class _Part:
    def __init__(self, header: list[str], currency: str, number: int) -> None:
        self.currency, self.number, self.lines = currency, number, 0
        self.file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
        self.text = io.TextIOWrapper(self.file, encoding="utf-8", newline="")
        self.csv = csv.writer(self.text, dialect="excel")
        self.csv.writerow(header)

    def add(self, lines: list[list[str]]) -> None:
        self.csv.writerows(lines)
        self.lines += len(lines)

    def copy_to(self, out: BinaryIO) -> None:
        self.text.flush()
        self.file.seek(0)
        shutil.copyfileobj(self.file, out)
        self.text.close()


class BankFiles:
    def __init__(self, out: BinaryIO, header: list[str], name: str, limit: int | None = None) -> None:
        self.out, self.header, self.name, self.limit = out, header, name, limit
        self.parts: dict[str, _Part] = {}
        self.zip: zipfile.ZipFile | None = None

    def add(self, currency: str, lines: list[list[str]]) -> None:
        """One payment's lines, kept in one file."""
        part = self.parts.get(currency)
        if part is not None and self.limit is not None and part.lines + len(lines) > self.limit:
            self._store(part)
            part = None
        if part is None:
            number = self.parts[currency].number + 1 if currency in self.parts else 1
            part = self.parts[currency] = _Part(self.header, currency, number)
        part.add(lines)

    def finish(self) -> Written:
        if self.zip is None and len(self.parts) <= 1:
            part = next(iter(self.parts.values()), None) or _Part(self.header, "", 1)
            part.copy_to(self.out)
            return Written("csv", CSV)
        for part in self.parts.values():
            self._store(part)
        self._zipfile().close()
        return Written("zip", ZIP)

    def _store(self, part: _Part) -> None:
        with self._zipfile().open(f"{self.name}-{part.currency}-{part.number}.csv", "w") as member:
            part.copy_to(member)

    def _zipfile(self) -> zipfile.ZipFile:
        if self.zip is None:
            self.zip = zipfile.ZipFile(self.out, "w", compression=zipfile.ZIP_DEFLATED)
        return self.zip


def write(rows: Iterable[Row], out: BinaryIO, context: Context, *, program: str, header: list[str],
          lines: Callable[[Row], list[list[str]]], limit: int | None = None) -> Written:
    """A bank statement report: each row's lines (from ``lines``) in the
    file of its currency, and the notes on what it holds."""
    files = BankFiles(out, header, f"{program}-{context.period.slug}", limit=limit)
    tally = notes.Tally(program, context.firm_currency, one_currency=False)
    for row in rows:
        tally.keep(row)
        files.add(row.currency, lines(row))
    written = files.finish()
    return Written(written.extension, written.media_type, tally.notes())
