"""Bank statement files split by currency and line limit, zipped when more than one."""

import io
import zipfile

import pytest

from gateway.reports.writers.bankfiles import BankFiles

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


def test_a_payments_lines_stay_in_one_file():
    out = io.BytesIO()
    files = BankFiles(out, ["A", "B"], "bank", limit=3)
    for n in range(3):
        files.add("CAD", [[f"{n}", "in"], [f"{n}", "fee"]])
    assert files.finish().extension == "zip"
    with zipfile.ZipFile(out) as archive:
        texts = [archive.read(name).decode() for name in archive.namelist()]
    assert archive.namelist() == ["bank-CAD-1.csv", "bank-CAD-2.csv", "bank-CAD-3.csv"]
    assert all(text.count("\r\n") == 3 for text in texts)  # the header and one payment's two lines


def test_a_full_file_is_zipped_as_soon_as_it_is_full():
    out = io.BytesIO()
    files = BankFiles(out, ["A"], "bank", limit=1)
    files.add("CAD", [["1"]])
    assert out.getvalue() == b""
    files.add("CAD", [["2"]])
    assert out.getvalue().startswith(b"PK")  # the first file left memory for the zip
    files.finish()


def test_one_file_is_plain_csv_and_none_is_a_header():
    out = io.BytesIO()
    files = BankFiles(out, ["A", "B"], "bank")
    files.add("CAD", [["1", "x"]])
    assert files.finish().extension == "csv" and out.getvalue() == b"A,B\r\n1,x\r\n"
    out = io.BytesIO()
    assert BankFiles(out, ["A", "B"], "bank").finish().extension == "csv" and out.getvalue() == b"A,B\r\n"
