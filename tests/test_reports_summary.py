"""The reply's summary: count, gross, fees and net per currency, and the exact dates."""

from gateway.reports.grammar import ReportSpec
from gateway.reports.periods import parse_period
from gateway.reports.summary import Summary

from tests.test_reports_fixtures import NOW, TORONTO, make_row


def _summary(rows, status="all", fmt="xlsx", word="last-month") -> Summary:
    summary = Summary(ReportSpec(fmt, word, status), parse_period(word, TORONTO, NOW))
    summary.add(rows[:1])
    summary.add(rows[1:])  # a batch at a time
    return summary


def test_per_currency_totals_over_paid_requests():
    rows = [make_row(), make_row(), make_row(status="sent", paid=None),
            make_row(currency="USD", amount_minor=10000, fee_minor=0, provider_fee_minor=320, application_fee_minor=0)]
    summary = _summary(rows)
    assert summary.count == 4
    cad = summary.by_currency["CAD"]
    assert (cad.count, cad.paid, cad.gross_minor, cad.fees_minor, cad.net_minor) == (3, 2, 256250, 8300, 247950)
    text = summary.text("Firm & Co")
    assert "last-month: 2026-03-01 to 2026-03-31 (America/Toronto)" in text
    assert ("CAD: 3 requests, 2 paid: gross $2,562.50 CAD (invoices $2,500.00 CAD, card fees $62.50 CAD), "
            "provider fees $73.00 CAD, platform fees $10.00 CAD, net $2,479.50 CAD.") in text
    assert ("USD: 1 request, 1 paid: gross $100.00 USD (invoices $100.00 USD, card fees $0.00 USD), "
            "provider fees $3.20 USD, platform fees $0.00 USD, net $96.80 USD.") in text


def test_unpaid_only_and_notes():
    text = _summary([make_row(status="sent", paid=None)], status="sent").text("Firm & Co", ["A note."])
    assert "sent payment requests" in text and "CAD: 1 request, none paid." in text and "A note." in text


def test_the_accounting_formats_count_payments_received():
    text = _summary([make_row()], fmt="iif").text("Firm & Co")
    assert text.startswith("Firm & Co: iif report of payments received, last-month:")


def test_an_empty_period_says_so():
    text = _summary([], status="paid", word="yesterday").text("Firm & Co")
    assert text == "No paid payment requests at Firm & Co in yesterday: 2026-04-14 (America/Toronto)."
