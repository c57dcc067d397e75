"""The `report` mail command: the reply's text and its file."""

import csv
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook

from gateway.core.models import Level, RequestStatus
from gateway.reports.mail import build_report_reply

from tests.test_reports_fixtures import NOW, database, make_firm, make_request, make_staff  # noqa: F401
from tests.test_reports_iif import read_iif
from tests.test_reports_sage import read_sage

MARCH = datetime(2026, 3, 10, 15, tzinfo=timezone.utc)


async def _firm_with_payments():
    firm = await make_firm()
    admin = await make_staff(firm)
    for hours in range(3):
        await make_request(firm, created_at=MARCH, paid_at=MARCH + timedelta(hours=hours), fee_minor=3125)
    await make_request(firm, created_at=MARCH, status=RequestStatus.SENT)
    return firm, admin


async def test_xlsx_last_month_paid_from_a_phone(database):
    firm, admin = await _firm_with_payments()
    text, [(filename, content_type, data)] = await build_report_reply(firm, admin, ("xlsx", "last-month", "paid"), NOW)
    assert filename == "firm.example-xlsx-2026-03-01_2026-03-31-paid.xlsx"
    assert content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "2026-03-01 to 2026-03-31 (America/Toronto)" in text
    assert "CAD: 3 requests, 3 paid: gross $3,843.75 CAD" in text and "net $3,734.25 CAD." in text
    sheet = load_workbook(io.BytesIO(data))["Payments"]
    assert [sheet.cell(row, 13).value for row in range(2, 5)] == ["paid"] * 3


def _entries(fmt: str, data: bytes) -> int:
    """How many requests (or payments) the file holds, read back as its program would."""
    if fmt == "csv":
        return len(list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))) - 1
    if fmt == "excel":
        return load_workbook(io.BytesIO(data))["Payments"].max_row - 3  # less the header, blank and total rows
    if fmt == "json":
        return len(json.loads(data)["requests"])
    if fmt == "iif":
        return len(read_iif(data))
    if fmt == "sage":
        return len(read_sage(data))
    lines = list(csv.reader(io.StringIO(data.decode("utf-8"))))[1:]
    return len([line for line in lines if "fees" not in " ".join(line)])  # qbo, xero: a payment and its fee line


@pytest.mark.parametrize(("fmt", "count"), [("csv", 4), ("excel", 4), ("json", 4), ("iif", 3), ("qbo", 3),
                                             ("xero", 3), ("sage", 3)])
async def test_every_format_replies_with_a_file_its_program_can_read(database, fmt, count):
    firm, admin = await _firm_with_payments()
    text, [(filename, _, data)] = await build_report_reply(firm, admin, (fmt, "2026-03"), NOW)
    assert filename.startswith("firm.example-") and "gross $3,843.75 CAD" in text
    assert _entries(fmt, data) == count


async def test_qbo_with_more_than_1000_lines_comes_zipped(database):
    firm, admin = await _firm_with_payments()
    for _ in range(520):  # with the 3 above: 523 payments, each a deposit and a fee line
        await make_request(firm, created_at=MARCH, paid_at=MARCH)
    _, [(filename, content_type, data)] = await build_report_reply(firm, admin, ("qbo", "last-month"), NOW)
    assert filename.endswith(".zip") and content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        lengths = [len(list(csv.reader(io.StringIO(archive.read(n).decode())))) - 1 for n in archive.namelist()]
    assert lengths == [1000, 46]


async def test_an_empty_period_says_so_without_a_file(database):
    firm, admin = await _firm_with_payments()
    reply = await build_report_reply(firm, admin, ("csv", "2025-03", "paid"), NOW)
    assert reply == ("No paid payment requests at Firm & Co in 2025-03: 2025-03-01 to 2025-03-31 (America/Toronto).", [])


@pytest.mark.parametrize(
    ("args", "named", "choice"),
    [
        (("xslx", "last-month"), "'xslx'", "sage"),
        (("csv", "lastmonth"), "'lastmonth'", "last-quarter"),
        (("csv", "last-month", "unpaid"), "'unpaid'", "cancelled"),
        (("sage", "last-month", "viewed"), "viewed", "refunded"),
        ((), "format", "xero"),
    ],
)
async def test_a_wrong_word_is_named_with_the_choices(database, args, named, choice):
    firm, admin = await _firm_with_payments()
    reply = await build_report_reply(firm, admin, args, NOW)
    assert isinstance(reply, str) and named in reply and choice in reply


@pytest.mark.parametrize("level", [Level.NONE, Level.SEND])
async def test_reports_need_level_report(database, level):
    firm, _ = await _firm_with_payments()
    sender = await make_staff(firm, "junior@firm.example", level)
    reply = await build_report_reply(firm, sender, ("csv", "last-month"), NOW)
    assert isinstance(reply, str) and "level report" in reply
    assert isinstance(await build_report_reply(firm, None, ("csv", "last-month"), NOW), str)
    reporter = await make_staff(firm, "reporter@firm.example", Level.REPORT)
    assert isinstance(await build_report_reply(firm, reporter, ("csv", "last-month"), NOW), tuple)
