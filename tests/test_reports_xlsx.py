"""XLSX: read back with openpyxl: dates are dates, amounts numbers in a
currency format, a frozen header, an autofilter and totals per currency."""

import io
from datetime import date, datetime
from decimal import Decimal

from openpyxl import load_workbook

from gateway.reports.writers import xlsx
from gateway.reports.writers.table import COLUMNS

from tests.test_reports_fixtures import make_context, make_row


def _book(rows):
    out = io.BytesIO()
    written = xlsx.write(rows, out, make_context())
    assert written.extension == "xlsx" and written.media_type.endswith("spreadsheetml.sheet")
    out.seek(0)
    return load_workbook(out)


def _number(value) -> Decimal:
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    return Decimal(str(value))


def test_values_types_and_formats():
    rows = [make_row(id=17), make_row(id=18, currency="USD", amount_minor=9995, fee_minor=0, provider_fee_minor=None,
                                      application_fee_minor=0, status="sent", paid=None, deposit_date=None)]
    sheet = _book(rows)["Payments"]
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "Request ID" and header[13] == "Created (America/Toronto)" and len(header) == len(COLUMNS)
    assert all(cell.font.b for cell in sheet[1])

    first = [cell.value for cell in sheet[2]]
    assert first[:5] == [17, "1042", "jane@client.example", "staff@firm.example", "CAD"]
    assert [_number(v) for v in first[5:12]] == [
        Decimal(x) for x in ("1250.00", "31.25", "1281.25", "36.50", "5.00", "1239.75", "0")]
    assert first[12] == "paid"
    assert first[13] == datetime(2026, 3, 2, 9, 15) and isinstance(first[13], datetime)
    assert first[15] == datetime(2026, 3, 3, 16, 45, 30)
    assert first[16] == datetime(2026, 3, 5) and sheet.cell(2, 17).is_date  # a date cell (openpyxl reads a datetime)
    assert sheet.cell(2, 17).number_format == "yyyy-mm-dd"
    assert sheet.cell(2, 14).is_date and sheet.cell(2, 14).number_format == "yyyy-mm-dd h:mm:ss"
    for column in range(6, 13):
        assert "[$CAD]" in sheet.cell(2, column).number_format
        assert sheet.cell(2, column).data_type == "n"

    second = [cell.value for cell in sheet[3]]
    assert second[4] == "USD" and _number(second[5]) == Decimal("99.95")
    assert second[6:12] == [None] * 6 and second[15] is None  # never charged: nothing but the amount
    assert "[$USD]" in sheet.cell(3, 6).number_format


def test_frozen_header_autofilter_and_totals_per_currency():
    rows = [make_row(), make_row(amount_minor=200000, fee_minor=0, provider_fee_minor=None),
            make_row(currency="USD", amount_minor=10000, fee_minor=0, provider_fee_minor=320, application_fee_minor=0)]
    sheet = _book(rows)["Payments"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:V4"
    assert all(cell.value is None for cell in sheet[5])  # a blank row before the totals
    cad, usd = [cell.value for cell in sheet[6]], [cell.value for cell in sheet[7]]
    assert cad[0] == "Total received" and cad[4] == "CAD"
    # Net only where the provider fee is known: the second payment's is not yet.
    assert [_number(v) for v in cad[5:12]] == [
        Decimal("3250.00"), Decimal("31.25"), Decimal("3281.25"), Decimal("36.50"), Decimal("10.00"),
        Decimal("1239.75"), Decimal("0")]
    assert usd[0] == "Total received" and usd[4] == "USD"
    assert [_number(v) for v in usd[5:12]] == [
        Decimal("100.00"), Decimal("0"), Decimal("100.00"), Decimal("3.20"), Decimal("0"), Decimal("96.80"),
        Decimal("0")]
    assert sheet.cell(6, 6).font.b and "[$CAD]" in sheet.cell(6, 6).number_format
    assert sheet.max_row == 7


def test_typed_text_is_text_never_a_formula_and_gets_no_apostrophe():
    attacks = ['=HYPERLINK("http://evil.example","click")', "+1", "-2", "@x", "\t=1"]
    rows = [make_row(invoice=attack, client=attack, staff=attack, provider_ref=attack) for attack in attacks]
    sheet = _book(rows)["Payments"]
    for index, attack in enumerate(attacks, start=2):
        for column in (2, 3, 4, 18):
            cell = sheet.cell(index, column)
            assert cell.data_type == "s" and cell.value == attack


def test_control_characters_that_xml_cannot_carry_are_dropped():
    sheet = _book([make_row(invoice="INV\x0b7\x00")])["Payments"]
    assert sheet.cell(2, 2).value == "INV7"


def test_an_empty_report_has_a_header_and_filter_only():
    sheet = _book([])["Payments"]
    assert sheet.max_row == 1 and sheet.auto_filter.ref == "A1:V1" and sheet.freeze_panes == "A2"


def test_reused_cells_keep_each_rows_values():
    rows = [make_row(id=n, amount_minor=n * 100, fee_minor=0, created=datetime(2026, 3, n, 8, tzinfo=make_row().created.tzinfo))
            for n in range(1, 6)]
    sheet = _book(rows)["Payments"]
    for n in range(1, 6):
        assert _number(sheet.cell(n + 1, 6).value) == Decimal(n)
        assert sheet.cell(n + 1, 14).value == datetime(2026, 3, n, 8)
        assert sheet.cell(n + 1, 15).value == datetime(2026, 3, 2, 11, 0)  # viewed: another column, its own cell
    assert date(2026, 3, 5) == sheet.cell(2, 17).value.date()
