"""XLSX with openpyxl in write-only mode: rows go to disk as they come,
so memory stays flat however long the report.

Dates are dates and amounts are numbers (exact Decimals, never floats) in
a format that shows the currency; the header row is frozen and carries an
autofilter; below the data, after a blank row, a totals row per currency
sums each amount column. Times are the firm's wall clock (Excel has no
timezones): the headers name the zone.
"""

from __future__ import annotations

from typing import BinaryIO, Iterable

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from gateway.money import CURRENCY_DECIMALS
from gateway.reports.rows import Row, money
from gateway.reports.writers.base import Context, Written
from gateway.reports.writers.injection import neutralise
from gateway.reports.writers.table import COLUMNS, DATETIME, MONEY, POSITIONS, TEXT, headers, values

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_WIDTHS = {"Request ID": 11, "Invoice": 14, "Client": 30, "Staff member": 26, "Currency": 9, "Status": 10,
           "Deposit date": 12, "Provider reference": 30}
_TEXT, _MONEY, _DATETIME = POSITIONS[TEXT], POSITIONS[MONEY], POSITIONS[DATETIME]
_CURRENCY = next(i for i, column in enumerate(COLUMNS) if column.key == "currency")
_LAST_COLUMN = get_column_letter(len(COLUMNS))
_BOLD = Font(bold=True)


def write(rows: Iterable[Row], out: BinaryIO, context: Context) -> Written:
    book = Workbook(write_only=True)
    sheet = _Sheet(book.create_sheet("Payments"))
    sheet.header(headers(context.period.zone.key))
    for row in rows:
        sheet.add(row)
    sheet.close()
    book.save(out)
    return Written("xlsx", MEDIA_TYPE)


class _Sheet:
    """The worksheet: a header, a row per request, and totals per currency.

    Amounts go into styled cells, one per amount column and currency,
    reused row after row: openpyxl serialises a row as soon as it is
    appended, so a styled cell can take the next row's value (a little
    cheaper than a new styled cell per amount). Dates and times stay
    plain values: openpyxl gives them a date format itself.
    """

    def __init__(self, sheet) -> None:
        self.sheet = sheet
        self.count = 0
        self.money_cells: dict[str, list[WriteOnlyCell]] = {}
        self.totals: dict[str, list[int]] = {}

    def header(self, texts: list[str]) -> None:
        # Views and column widths are written before the first row: set them first.
        self.sheet.freeze_panes = "A2"
        for index, column in enumerate(COLUMNS, 1):
            width = _WIDTHS.get(column.header, 18 if column.kind == DATETIME else 14)
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        self.sheet.append([self._bold(text) for text in texts])

    def add(self, row: Row) -> None:
        cells = values(row)
        for i in _TEXT:
            cells[i] = _text(cells[i])
        currency = row.currency
        styled = self.money_cells.get(currency) or self._new_money_cells(currency)
        sums = self.totals[currency]
        for k, i in enumerate(_MONEY):
            minor = cells[i]
            if minor is not None:
                sums[k] += minor
                cell = styled[k]
                cell.value = money(minor, currency)
                cells[i] = cell
        for i in _DATETIME:
            if cells[i] is not None:
                cells[i] = cells[i].replace(tzinfo=None)
        self.sheet.append(cells)
        self.count += 1

    def close(self) -> None:
        self.sheet.auto_filter.ref = f"A1:{_LAST_COLUMN}{self.count + 1}"
        if self.totals:
            self.sheet.append([])  # a blank row keeps the totals out of the filtered range
        for currency in sorted(self.totals):
            cells: list = [None] * len(COLUMNS)
            cells[0], cells[_CURRENCY] = self._bold("Total"), self._bold(currency)
            for i, minor in zip(_MONEY, self.totals[currency]):
                cells[i] = cell = self._styled(currency_format(currency))
                cell.font = _BOLD
                cell.value = money(minor, currency)
            self.sheet.append(cells)

    def _new_money_cells(self, currency: str) -> list[WriteOnlyCell]:
        self.totals[currency] = [0] * len(_MONEY)
        cells = self.money_cells[currency] = [self._styled(currency_format(currency)) for _ in _MONEY]
        return cells

    def _styled(self, number_format: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.sheet)
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
    return neutralise(text if text.isprintable() else ILLEGAL_CHARACTERS_RE.sub("", text))
