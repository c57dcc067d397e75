"""Which requests a report holds, read in batches, and the row's figures."""

from datetime import date, datetime, timezone
from decimal import Decimal

from gateway.core.models import RequestStatus
from gateway.reports.periods import parse_period
from gateway.reports.rows import Selection, money

from tests.test_reports_fixtures import NOW, TORONTO, database, make_firm, make_request, make_row  # noqa: F401

UTC = timezone.utc


async def _ids(selection: Selection, size: int = 2000) -> list[int]:
    return [row.id async for batch in selection.batches(size) for row in batch]


async def test_a_paid_request_belongs_to_the_day_it_was_paid(database):
    firm = await make_firm()
    february = datetime(2026, 2, 20, 15, tzinfo=UTC)
    march = datetime(2026, 3, 10, 15, tzinfo=UTC)
    paid_in_march = await make_request(firm, created_at=february, paid_at=march)
    sent_in_march = await make_request(firm, created_at=march, status=RequestStatus.SENT, paid_at=None)
    sent_in_february = await make_request(firm, created_at=february, status=RequestStatus.SENT, paid_at=None)
    refunded = await make_request(firm, created_at=february, paid_at=march, status=RequestStatus.REFUNDED)

    march_period = parse_period("2026-03", TORONTO, NOW)
    february_period = parse_period("2026-02", TORONTO, NOW)
    assert await _ids(Selection(firm.id, march_period)) == [paid_in_march.id, sent_in_march.id, refunded.id]
    assert await _ids(Selection(firm.id, february_period)) == [sent_in_february.id]
    assert await _ids(Selection(firm.id, march_period, "paid")) == [paid_in_march.id]
    assert await _ids(Selection(firm.id, march_period, "sent")) == [sent_in_march.id]
    assert await _ids(Selection(firm.id, march_period, payments_only=True)) == [paid_in_march.id, refunded.id]
    assert await Selection(firm.id, march_period).count() == 3


async def test_the_months_edges_follow_the_firms_clock_across_dst(database):
    firm = await make_firm()
    # 23:30 on 31 March in Toronto (EDT) is 03:30 UTC on 1 April; 00:30 on 1 March (EST) is 05:30 UTC.
    last_minute = await make_request(firm, created_at=datetime(2026, 4, 1, 3, 30, tzinfo=UTC), paid_at=None,
                                     status=RequestStatus.SENT)
    first_minute = await make_request(firm, created_at=datetime(2026, 3, 1, 5, 30, tzinfo=UTC), paid_at=None,
                                      status=RequestStatus.SENT)
    await make_request(firm, created_at=datetime(2026, 3, 1, 4, 30, tzinfo=UTC), paid_at=None,
                       status=RequestStatus.SENT)  # 23:30 on 28 February in Toronto
    await make_request(firm, created_at=datetime(2026, 4, 1, 4, 30, tzinfo=UTC), paid_at=None,
                       status=RequestStatus.SENT)  # 00:30 on 1 April in Toronto
    march = parse_period("2026-03", TORONTO, NOW)
    assert await _ids(Selection(firm.id, march)) == [last_minute.id, first_minute.id]

    # November: EDT at the start, EST after 1 November 02:00.
    start = await make_request(firm, created_at=datetime(2026, 11, 1, 4, 0, tzinfo=UTC), paid_at=None,
                               status=RequestStatus.SENT)
    end = await make_request(firm, created_at=datetime(2026, 12, 1, 4, 59, tzinfo=UTC), paid_at=None,
                             status=RequestStatus.SENT)
    await make_request(firm, created_at=datetime(2026, 12, 1, 5, 0, tzinfo=UTC), paid_at=None,
                       status=RequestStatus.SENT)
    await make_request(firm, created_at=datetime(2026, 11, 1, 3, 59, tzinfo=UTC), paid_at=None,
                       status=RequestStatus.SENT)
    november = parse_period("2026-11", TORONTO, NOW)
    assert await _ids(Selection(firm.id, november)) == [start.id, end.id]


async def test_batches_page_by_id_and_stay_in_one_firm(database):
    firm = await make_firm()
    other = await make_firm("other.example")
    moment = datetime(2026, 3, 10, 15, tzinfo=UTC)
    mine = [(await make_request(firm, created_at=moment, paid_at=moment)).id for _ in range(7)]
    await make_request(other, created_at=moment, paid_at=moment)
    period = parse_period("2026-03", TORONTO, NOW)
    sizes = [len(batch) async for batch in Selection(firm.id, period).batches(3)]
    assert sizes == [3, 3, 1]
    assert await _ids(Selection(firm.id, period), 3) == mine


async def test_rows_carry_local_times_and_figures(database):
    firm = await make_firm()
    created = datetime(2026, 3, 10, 15, tzinfo=UTC)
    await make_request(firm, created_at=created, viewed_at=datetime(2026, 3, 10, 16, tzinfo=UTC),
                       paid_at=datetime(2026, 3, 11, 3, 30, tzinfo=UTC), fee_minor=3125, provider_fee_minor=3650,
                       application_fee_minor=500, deposit_date=date(2026, 3, 13), invoice="INV-7",
                       client="émile@client.example", provider_ref="pi_9")
    [row] = [row async for batch in Selection(firm.id, parse_period("2026-03", TORONTO, NOW)).batches() for row in batch]
    assert row.created == datetime(2026, 3, 10, 11, tzinfo=TORONTO)
    assert row.created.utcoffset().total_seconds() == -4 * 3600
    assert row.paid == datetime(2026, 3, 10, 23, 30, tzinfo=TORONTO)
    assert row.deposit_date == date(2026, 3, 13)
    assert (row.amount_minor, row.fee_minor, row.total_minor) == (125000, 3125, 128125)
    assert (row.provider_fee_minor, row.application_fee_minor) == (3650, 500)
    assert row.net_minor == 128125 - 3650 - 500
    assert (row.invoice, row.client, row.status, row.provider_ref) == ("INV-7", "émile@client.example", "paid", "pi_9")


def test_net_is_total_less_the_providers_and_platforms_fees():
    assert make_row(total_minor=10000, provider_fee_minor=320, application_fee_minor=100).net_minor == 9580
    # An unknown provider fee leaves net blank too: a row never shows a net its columns do not add up to.
    assert make_row(total_minor=10000, provider_fee_minor=None, application_fee_minor=0).net_minor is None
    # No payment, no net.
    assert make_row(paid=None, status="sent").net_minor is None


def test_money_is_an_exact_decimal_with_the_currencys_places():
    assert money(125000, "CAD") == Decimal("1250.00") and str(money(125000, "CAD")) == "1250.00"
    assert str(money(29, "USD")) == "0.29"
    assert str(money(-3650, "CAD")) == "-36.50"
    assert str(money(1000, "JPY")) == "1000"
