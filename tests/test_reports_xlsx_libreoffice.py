"""An XLSX we write, opened by LibreOffice Calc (headless, converted to
CSV), gives back the same values. Needs Debian's libreoffice-calc: a
missing soffice fails this test, it never skips (.ci/run installs it)."""

import csv
import io
import subprocess
from datetime import date, datetime
from decimal import Decimal

from gateway.reports.writers import xlsx
from gateway.reports.writers.table import COLUMNS, DATE, DATETIME, ID, MONEY, TEXT

from tests.conftest import need_tool
from tests.test_reports_fixtures import TORONTO, make_context, make_row

# Comma, double quote, UTF-8 (76), from line 1; token 9 false: values, not as shown.
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false"


def _libreoffice_csv(tmp_path, data: bytes) -> list[list[str]]:
    soffice = need_tool("soffice")
    source = tmp_path / "report.xlsx"
    source.write_bytes(data)
    profile = tmp_path / "lo-profile"  # a throwaway profile: no shared state, no first-run dialogs
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
         "--convert-to", CSV_FILTER, "--outdir", str(tmp_path / "out"), str(source)],
        check=True, capture_output=True, timeout=180,
    )
    text = (tmp_path / "out" / "report.csv").read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def _expected(row, column):
    value = getattr(row, column.attribute)
    if value is None:
        return None
    if column.kind == MONEY:
        return Decimal(value).scaleb(-2 if row.currency != "JPY" else 0)
    if column.kind == DATETIME:
        return value.replace(tzinfo=None)
    if column.kind == TEXT:
        return value  # text, never a formula, and no apostrophe to see
    return value


def _read(text: str, kind: str):
    if text == "":
        return None
    if kind == MONEY:
        return Decimal(text)
    if kind == DATETIME:
        return datetime.fromisoformat(text)
    if kind == DATE:
        return date.fromisoformat(text[:10])
    if kind == ID:
        return int(text)
    return text


def test_libreoffice_reads_back_the_same_values(tmp_path):
    rows = [
        make_row(id=1, client="Émile Çôté <emile@client.example>"),
        make_row(id=2, invoice='=HYPERLINK("http://evil.example","x")', client="+1", staff="-2", provider_ref="@x"),
        make_row(id=3, currency="JPY", amount_minor=123456, fee_minor=0, provider_fee_minor=None,
                 application_fee_minor=0, status="sent", paid=None, viewed=None, deposit_date=None),
        make_row(id=4, amount_minor=99, fee_minor=1, provider_fee_minor=33, application_fee_minor=0,
                 created=datetime(2026, 3, 8, 3, 30, tzinfo=TORONTO), paid=datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=TORONTO)),
    ]
    out = io.BytesIO()
    xlsx.write(rows, out, make_context())
    header, *lines = _libreoffice_csv(tmp_path, out.getvalue())

    assert header[0] == "Request ID" and header[13] == "Created (America/Toronto)"
    for row, line in zip(rows, lines):
        for column, text in zip(COLUMNS, line, strict=True):
            assert _read(text, column.kind) == _expected(row, column), (row.id, column.header, text)

    blank, cad, jpy = lines[4:]
    assert set(blank) == {""}
    assert cad[0] == "Total received" and cad[4] == "CAD"
    assert [Decimal(v) for v in cad[5:12]] == [Decimal("2500.99"), Decimal("62.51"), Decimal("2563.50"),
                                               Decimal("73.33"), Decimal("10.00"), Decimal("2480.17"), Decimal("0")]
    assert jpy[:6] == ["Total received", "", "", "", "JPY", "0"]  # the JPY request was never paid
