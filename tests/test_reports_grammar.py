"""`report FORMAT PERIOD [STATUS]`: the words, and errors that name the wrong one."""

import pytest

from gateway.reports.grammar import GrammarError, ReportSpec, parse_report_args

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


@pytest.mark.parametrize(
    ("args", "spec"),
    [
        (("csv", "last-month"), ReportSpec("csv", "last-month", "all")),
        (("XLSX", "last-month", "Paid"), ReportSpec("xlsx", "last-month", "paid")),
        (("excel", "2026-03"), ReportSpec("xlsx", "2026-03", "all")),
        (("json", "today", "sent"), ReportSpec("json", "today", "sent")),
        (("iif", "this-year", "refunded"), ReportSpec("iif", "this-year", "refunded")),
        (("qbo", "2026"), ReportSpec("qbo", "2026", "all")),
        (("xero", "last-week", "paid"), ReportSpec("xero", "last-week", "paid")),
        (("sage", "2026-03-01..2026-03-31", "all"), ReportSpec("sage", "2026-03-01..2026-03-31", "all")),
    ],
)
def test_reads_format_period_and_status(args, spec):
    assert parse_report_args(args) == spec


def test_payment_formats_take_only_paid_requests():
    assert parse_report_args(("sage", "2026")).payments_only
    assert not parse_report_args(("csv", "2026")).payments_only


@pytest.mark.parametrize(
    ("args", "named", "choices"),
    [
        (("xslx", "last-month"), "'xslx'", ["csv", "xlsx", "json", "iif", "qbo", "xero", "sage", "did you mean xlsx"]),
        (("pdf", "last-month"), "'pdf'", ["csv", "xlsx (or excel)", "sage"]),
        (("csv", "last-month", "payed"), "'payed'", ["sent", "viewed", "paid", "failed", "refunded", "cancelled",
                                                     "expired", "all"]),
        (("iif", "last-month", "sent"), "sent", ["paid", "refunded", "all"]),
        (("csv", "last-month", "paid", "please"), "'please'", ["report FORMAT PERIOD [STATUS]"]),
        ((), "format", ["csv", "xlsx"]),
        (("csv",), "period", ["last-month", "2026-03-01..2026-03-31"]),
    ],
)
def test_wrong_words_are_named_with_the_choices(args, named, choices):
    with pytest.raises(GrammarError) as raised:
        parse_report_args(args)
    message = str(raised.value)
    assert named in message
    for choice in choices:
        assert choice in message
