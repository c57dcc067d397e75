"""QuickBooks Online bank CSV: Date, Description, Amount; at most 1,000
lines a file, more files zipped."""

import csv
import io
import zipfile
from decimal import Decimal

from gateway.reports.writers import qbo

from tests.test_reports_fixtures import make_context, make_row


def _parse(data: bytes) -> list[list[str]]:
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == ["Date", "Description", "Amount"]
    assert all(len(row) == 3 for row in rows)
    return rows[1:]


def _write(rows):
    out = io.BytesIO()
    return qbo.write(rows, out, make_context()), out.getvalue()


def test_a_deposit_and_a_fee_line_per_payment():
    written, data = _write([make_row(id=17), make_row(id=18, invoice="", fee_minor=0, provider_fee_minor=None,
                                                       application_fee_minor=0)])
    assert (written.extension, written.media_type) == ("csv", "text/csv")
    assert _parse(data) == [
        ["03/03/2026", "Payment, invoice 1042, jane@client.example (request 17)", "1281.25"],
        ["03/03/2026", "Payment fees (request 17)", "-41.50"],
        ["03/03/2026", "Payment, jane@client.example (request 18)", "1250.00"],
    ]


def test_lines_sum_to_the_net():
    rows = [make_row(), make_row(amount_minor=99, fee_minor=0, provider_fee_minor=33, application_fee_minor=0)]
    _, data = _write(rows)
    assert sum(Decimal(amount) for _, _, amount in _parse(data)) == Decimal("1239.75") + Decimal("0.66")


def test_more_than_1000_lines_are_zipped_in_files_of_at_most_1000():
    # 700 payments with a fee line each: 1,400 lines, a payment's two lines never split.
    _, data = _write([make_row(id=n) for n in range(1, 701)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        parts = [_parse(archive.read(name)) for name in names]
    assert names == ["qbo-2026-03-01_2026-03-31-CAD-1.csv", "qbo-2026-03-01_2026-03-31-CAD-2.csv"]
    assert [len(part) for part in parts] == [1000, 400]
    descriptions = [line[1] for part in parts for line in part]
    assert descriptions[999] == "Payment fees (request 500)"
    assert len([d for d in descriptions if d.startswith("Payment,")]) == 700


def test_exactly_1000_lines_stay_one_csv():
    written, data = _write([make_row(id=n, fee_minor=0, provider_fee_minor=None, application_fee_minor=0)
                            for n in range(1000)])
    assert written.extension == "csv" and len(_parse(data)) == 1000


def test_one_file_per_currency():
    written, data = _write([make_row(), make_row(currency="USD")])
    assert written.extension == "zip" and written.media_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["qbo-2026-03-01_2026-03-31-CAD-1.csv", "qbo-2026-03-01_2026-03-31-USD-1.csv"]


def test_an_empty_report_is_a_header():
    written, data = _write([])
    assert written.extension == "csv" and _parse(data) == []
