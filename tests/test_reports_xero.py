"""Xero bank statement CSV: *Date (DD/MM/YYYY), *Amount, Payee, Description, Reference."""

import csv
import io
import zipfile
from datetime import datetime, timezone
from decimal import Decimal

from gateway.reports.writers import xero

from tests.test_reports_fixtures import TORONTO, make_context, make_row


def _parse(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == ["*Date", "*Amount", "Payee", "Description", "Reference"]
    return rows[1:]


def _write(rows):
    out = io.BytesIO()
    return xero.write(rows, out, make_context()), out.getvalue()


def test_a_receipt_and_a_fee_line_per_payment():
    written, data = _write([make_row(id=17), make_row(id=18, invoice="", fee_minor=0, provider_fee_minor=None,
                                                       application_fee_minor=0)])
    assert written.extension == "csv"
    assert _parse(data) == [
        ["03/03/2026", "1281.25", "jane@client.example", "Invoice 1042 (request 17)", "1042"],
        ["03/03/2026", "-41.50", "Stripe", "Payment fees (request 17)", "1042"],
        ["03/03/2026", "1250.00", "jane@client.example", "Request 18", "CT18"],
    ]
    assert sum(Decimal(line[1]) for line in _parse(data)) == Decimal("1239.75") + Decimal("1250.00")


def test_dates_are_day_first_in_the_firms_timezone():
    # 01:30 UTC on 1 April is still 31 March in Toronto.
    paid = datetime(2026, 4, 1, 1, 30, tzinfo=timezone.utc).astimezone(TORONTO)
    _, data = _write([make_row(paid=paid)])
    assert _parse(data)[0][0] == "31/03/2026"


def test_client_text_goes_in_as_typed_without_a_stray_apostrophe():
    # Xero imports the file; no spreadsheet opens it, so nothing is prefixed.
    _, data = _write([make_row(client="=cmd|' /C calc'!A0", invoice="+1")])
    line = _parse(data)[0]
    assert line[2] == "=cmd|' /C calc'!A0" and line[4] == "+1"


def test_at_most_1000_lines_a_file_zipped_when_several():
    # 600 payments with a fee line each: 1,200 lines were one file.
    written, data = _write([make_row(id=n) for n in range(1, 601)])
    assert written.extension == "zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sizes = [len(_parse(archive.read(name))) for name in sorted(archive.namelist())]
    assert sizes == [1000, 200] and all(size <= 1000 for size in sizes)


def test_one_file_per_currency():
    written, data = _write([make_row(), make_row(currency="USD"), make_row()])
    assert written.extension == "zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["xero-2026-03-01_2026-03-31-CAD-1.csv",
                                              "xero-2026-03-01_2026-03-31-USD-1.csv"]
        assert len(_parse(archive.read("xero-2026-03-01_2026-03-31-CAD-1.csv"))) == 4
