"""Running a report from the database to a file, its name and its summary."""

import io
from datetime import datetime, timezone

import pytest

from gateway.reports.export import period_of, run_report
from gateway.reports.grammar import parse_report_args
from gateway.reports.periods import PeriodError

from tests.test_reports_fixtures import NOW, database, make_firm, make_request  # noqa: F401
from tests.test_reports_sage import read_sage

MARCH = datetime(2026, 3, 10, 15, tzinfo=timezone.utc)


async def test_a_journal_report_with_its_notes(database):
    firm = await make_firm()
    await make_request(firm, created_at=MARCH, paid_at=MARCH)
    await make_request(firm, created_at=MARCH, paid_at=MARCH, currency="USD")
    spec = parse_report_args(("sage", "last-month"))
    out, progress = io.BytesIO(), []
    report = await run_report(firm, spec, period_of(firm, spec, NOW), out, progress.append)
    assert progress == [2]
    assert report.filename == "firm.example-sage-2026-03-01_2026-03-31.txt"
    assert len(read_sage(out.getvalue())) == 1
    assert "USD: 1 request, 1 paid" in report.text and "Left out of the sage file: 1 in USD" in report.text


async def test_the_period_is_read_in_the_firms_timezone(database):
    tokyo = await make_firm("tokyo.example", timezone_name="Asia/Tokyo")
    spec = parse_report_args(("csv", "today"))
    assert period_of(tokyo, spec, datetime(2026, 4, 15, 16, tzinfo=timezone.utc)).first_day.isoformat() == "2026-04-16"
    with pytest.raises(PeriodError):
        period_of(tokyo, parse_report_args(("csv", "someday")), NOW)

