"""XLSX with openpyxl in write-only mode: rows go to disk as they come,
so memory stays flat however long the report.

Dates are dates and amounts are numbers (exact Decimals, never floats) in
a format that shows the currency; the header row is frozen and carries an
autofilter; below the data, after a blank row, a totals row per currency
sums each amount column over the requests whose money moved (the same
sums as the summary's). Times are the firm's wall clock (Excel has no
timezones): the headers name the zone.
"""

from __future__ import annotations

from typing import BinaryIO, Iterable

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from gateway.core.money import CURRENCY_DECIMALS
from gateway.reports.rows import Row, money
from gateway.reports.writers.base import Context, Written
from gateway.reports.writers.table import COLUMNS, DATETIME, DEPOSIT, MONEY, POSITIONS, TEXT, headers, values

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_WIDTHS = {"Request ID": 11, "Invoice": 14, "Client": 30, "Staff member": 26, "Currency": 9, "Status": 10,
           "Deposit date": 12, "Provider reference": 30}
_TEXT, _MONEY, _DATETIME = POSITIONS[TEXT], POSITIONS[MONEY], POSITIONS[DATETIME]
_TEXT_SET = frozenset(_TEXT)
_DEPOSIT = POSITIONS[DEPOSIT]
_CURRENCY = next(i for i, column in enumerate(COLUMNS) if column.key == "currency")
_LAST_COLUMN = get_column_letter(len(COLUMNS))
_BOLD = Font(bold=True)


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    book = Workbook(write_only=True)
    worksheet = _CellsWorksheet(parent=book, title="Payments")
    book._add_sheet(worksheet)
    sheet = _Sheet(worksheet)
    sheet.header(headers(context.period.zone.key))
    for row in rows:
        sheet.add(row)
    sheet.close()
    book.save(out)
    return Written("xlsx", MEDIA_TYPE)


class _CellsWorksheet(WriteOnlyWorksheet):
    """openpyxl's write-only worksheet that also takes a row as ready cells.

    openpyxl's ``append()`` turns each value into a cell; a styled value
    (an amount in its currency format) has to be a cell of its own, which
    costs an exception, a fresh cell and a style lookup per amount, every
    row. A row given as ``_Cells`` is written as it is: the cells are made
    once per column (and per currency for amounts) and take each row's
    values, and openpyxl's own writer serialises them, styles included.
    (``_values_to_row`` is openpyxl 3.1's hook between append() and its
    writer; pyproject pins 3.1, and the xlsx tests read back every value
    and number format, so a change there fails them.)
    """

    def _values_to_row(self, values, row_idx):
        if type(values) is not _Cells:
            return super()._values_to_row(values, row_idx)
        for cell in values:
            cell.row = row_idx
        return values


class _Cells(list):
    """A row of cells for ``_CellsWorksheet``, written as given."""


class _Sheet:
    """The worksheet: a header, a row per request, and totals per currency.

    Each column has one cell, reused row after row (openpyxl serialises a
    row as soon as it is appended); the amount columns have one styled cell
    per currency. Dates and times are plain values: openpyxl gives them a
    date format itself.
    """

    def __init__(self, sheet: _CellsWorksheet) -> None:
        self.sheet = sheet
        self.count = 0
        self.plain_cells = [self._cell(index) for index in range(1, len(COLUMNS) + 1)]
        self.money_cells: dict[str, dict[int, WriteOnlyCell]] = {}
        self.totals: dict[str, list[int]] = {}

    def header(self, texts: list[str]) -> None:
        # Views and column widths are written before the first row: set them first.
        self.sheet.freeze_panes = "A2"
        for index, column in enumerate(COLUMNS, 1):
            width = _WIDTHS.get(column.header, 18 if column.kind == DATETIME else 14)
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        self.sheet.append([self._bold(text) for text in texts])

    def add(self, row: Row) -> None:
        values_ = values(row)
        for i in _TEXT:
            values_[i] = _text(values_[i])
        for i in _DATETIME:
            if values_[i] is not None:
                values_[i] = values_[i].replace(tzinfo=None)
        currency = row.currency
        money_cells = self.money_cells.get(currency) or self._new_money_cells(currency)
        sums = self.totals[currency]
        # The totals row adds up money received only, as the summary does.
        received = row.received
        for k, i in enumerate(_MONEY):
            if values_[i] is not None:
                if received:
                    sums[k] += values_[i]
                values_[i] = money(values_[i], currency)
        deposit_cells = {}
        for i in _DEPOSIT:
            if values_[i] is not None:
                # In the deposit currency: its own format, and not in the row currency's totals.
                deposit_cells[i] = self._cell(i + 1, currency_format(row.settlement_currency))
                values_[i] = money(values_[i], row.settlement_currency)
        cells = _Cells()
        for i, value in enumerate(values_):
            if value is not None:
                cell = money_cells.get(i) or deposit_cells.get(i) or self.plain_cells[i]
                cell.value = value
                if i in _TEXT_SET:
                    # Typed text stays text: openpyxl would make "=..." a formula.
                    # A string cell never runs, so no apostrophe is needed (or shown).
                    cell.data_type = "s"
                cells.append(cell)
        self.sheet.append(cells)
        self.count += 1

    def close(self) -> None:
        self.sheet.auto_filter.ref = f"A1:{_LAST_COLUMN}{self.count + 1}"
        if self.totals:
            self.sheet.append([])  # a blank row keeps the totals out of the filtered range
        for currency in sorted(self.totals):
            cells: list = [None] * len(COLUMNS)
            cells[0], cells[_CURRENCY] = self._bold("Total received"), self._bold(currency)
            for i, minor in zip(_MONEY, self.totals[currency]):
                cells[i] = cell = self._cell(i + 1, currency_format(currency))
                cell.font = _BOLD
                cell.value = money(minor, currency)
            self.sheet.append(cells)

    def _new_money_cells(self, currency: str) -> dict[int, WriteOnlyCell]:
        self.totals[currency] = [0] * len(_MONEY)
        cells = self.money_cells[currency] = {i: self._cell(i + 1, currency_format(currency)) for i in _MONEY}
        return cells

    def _cell(self, column: int, number_format: str | None = None) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet)
        cell.column = column
        if number_format:
            cell.number_format = number_format
        return cell

    def _bold(self, text: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet, value=text)
        cell.font = _BOLD
        return cell


def currency_format(currency: str) -> str:
    """A number format showing the code: "#,##0.00 [$CAD]" (Excel files it under Currency)."""
    decimals = CURRENCY_DECIMALS.get(currency, 2)
    number = "#,##0." + "0" * decimals if decimals else "#,##0"
    return f"{number} [${currency}]"


def _text(text: str) -> str:
    # XML cannot carry most control characters; openpyxl refuses them.
    # (isprintable() is a quick way past the regular expression for most text.)
    return text if text.isprintable() else ILLEGAL_CHARACTERS_RE.sub("", text)
