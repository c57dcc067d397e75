"""The Reports page over real HTTP: the command's choices and refusals, the
summary of the same rows, the file streamed and byte for byte the one the
mail command attaches, and only from level report, checked by URL."""

from __future__ import annotations

import html
import io
from datetime import timedelta
from zipfile import ZipFile

import httpx
import pytest
from openpyxl import load_workbook

from gateway.core.models import Firm, Level, PaymentRequest, RequestStatus
from gateway.reports.export import period_of, run_report
from gateway.reports.grammar import parse_report_args
from tests.staff_support import add_requests, colleague, signed_in

pytest_plugins = ["tests.web_fixtures"]


async def paid(clocked, count: int, **kwargs) -> list[int]:
    """``count`` requests paid an hour after they were sent, this month."""
    now = clocked.deps.clock()
    ids = await add_requests(clocked, count, start=now - timedelta(hours=3), every=timedelta(seconds=1), **kwargs)
    for request in await PaymentRequest.filter(id__in=ids):
        await PaymentRequest.filter(id=request.id).update(
            status=RequestStatus.PAID, paid_at=request.created_at + timedelta(hours=1), fee_minor=240,
            total_minor=request.amount_minor + 240, provider_fee_minor=327, provider="sandbox")
    return ids


async def mailed_file(clocked, words: list[str]) -> bytes:
    """The file the `report` command would attach, for comparison."""
    firm = await Firm.get(domain="demo.localhost")
    spec = parse_report_args(words)
    out = io.BytesIO()
    await run_report(firm, spec, period_of(firm, spec, clocked.deps.clock()), out)
    return out.getvalue()


async def test_the_summary_and_the_streamed_csv_are_the_mail_commands(clocked):
    await paid(clocked, 3)
    await add_requests(clocked, 2, start=clocked.deps.clock() - timedelta(hours=2))  # sent, not paid
    async with signed_in(clocked) as http:
        page = await http.get("/staff/reports?format=csv&period=this-month&status=all")
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert "Summary, March 1, 2026 to March 31, 2026" in text
        row = text[text.index("<th scope=\"row\">CAD</th>"):]
        cells = [c.split("</td>")[0] for c in row.split('<td class="num">')[1:9]]
        assert cells[:3] == ["5", "3", "$3,757.20 CAD"]  # requests, paid, gross = 3 × 1,252.40
        link = html.unescape(page.text.split('href="/staff/reports/file?')[1].split('"')[0])
        async with http.stream("GET", f"/staff/reports/file?{link}") as download:
            assert download.status_code == 200
            assert download.headers["content-type"].startswith("text/csv")
            assert "content-length" not in download.headers  # streamed
            assert download.headers["content-disposition"].startswith(
                'attachment; filename="demo.localhost-csv-2026-03-01_2026-03-31.csv"')
            body = b"".join([chunk async for chunk in download.aiter_bytes()])
    assert body == await mailed_file(clocked, ["csv", "this-month", "all"])


async def test_xlsx_and_a_zipped_bank_file_come_with_their_real_type(clocked):
    await paid(clocked, 1001)
    async with signed_in(clocked) as http:
        xlsx = await http.get("/staff/reports/file?format=xlsx&period=this-month")
        assert xlsx.headers["content-disposition"].startswith('attachment; filename="demo.localhost-xlsx-')
        assert load_workbook(io.BytesIO(xlsx.content), read_only=True).sheetnames == ["Payments"]
        qbo = await http.get("/staff/reports/file?format=qbo&period=this-month&status=paid")
        assert qbo.headers["content-type"] == "application/zip"
        assert '-paid.zip"' in qbo.headers["content-disposition"]
        # Written to a stream, the zip has its sizes after each member: the same files inside.
        streamed, mailed = (ZipFile(io.BytesIO(data)) for data in (
            qbo.content, await mailed_file(clocked, ["qbo", "this-month", "paid"])))
        assert streamed.namelist() == mailed.namelist() and len(mailed.namelist()) > 1
        assert all(streamed.read(name) == mailed.read(name) for name in mailed.namelist())


async def test_a_range_of_dates_and_an_empty_period(clocked):
    await paid(clocked, 2)
    async with signed_in(clocked) as http:
        page = await http.get("/staff/reports?format=json&period=range&from=2026-03-02&to=2026-03-02")
        assert "Summary, March 2, 2026 to March 2, 2026" in html.unescape(page.text)
        empty = await http.get("/staff/reports?format=csv&period=last-year")
        assert "Nothing in this period" in empty.text and "/staff/reports/file" not in empty.text


@pytest.mark.parametrize("query, words", [
    ("format=qbo&period=this-month&status=sent", "qbo records payments received"),
    ("format=pdf&period=this-month", "'pdf' is not a report format"),
    ("format=csv&period=someday", "someday"),
    ("format=csv&period=range&from=2026-03-05&to=", "range"),
])
async def test_a_choice_the_command_refuses_is_refused_with_its_sentence(clocked, query, words):
    async with signed_in(clocked) as http:
        page = await http.get(f"/staff/reports?{query}")
        assert page.status_code == 400 and words in html.unescape(page.text)
        file = await http.get(f"/staff/reports/file?{query}")
        assert file.status_code == 400 and words in file.text


async def test_send_level_cannot_reach_reports_by_url(clocked):
    await colleague(clocked, "sam@demo.localhost", Level.SEND)
    async with signed_in(clocked, "sam@demo.localhost") as http:
        assert (await http.get("/staff/reports")).status_code == 403
        assert (await http.get("/staff/reports/file?format=csv&period=this-month")).status_code == 403
        assert 'href="/staff/reports"' not in (await http.get("/staff/")).text
    async with httpx.AsyncClient(base_url=clocked.deps.settings.public_base_url) as stranger:
        assert (await stranger.get("/staff/reports/file?format=csv&period=this-month")).status_code == 401


async def test_a_download_left_half_way_stops_its_writer(clocked):
    await paid(clocked, 3000)
    async with signed_in(clocked) as http:
        async with http.stream("GET", "/staff/reports/file?format=csv&period=this-month") as download:
            first = await anext(download.aiter_raw())
            assert first.startswith(b"\xef\xbb\xbf")
        # The gateway goes on answering, and a whole download still works.
        whole = await http.get("/staff/reports/file?format=csv&period=this-month")
        assert whole.content.count(b"\r\n") == 3001
