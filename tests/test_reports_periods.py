"""PERIOD words to whole days in the firm's timezone, with a fixed clock."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gateway.reports.periods import WORDS, PeriodError, parse_period

from tests.test_reports_fixtures import NOW, TORONTO  # Wednesday 2026-04-15, 10:00 in Toronto

UTC = timezone.utc


def _hours(period) -> timedelta:
    # Subtracting two datetimes of one zone gives wall-clock time: compare in UTC.
    return period.end.astimezone(UTC) - period.start.astimezone(UTC)


@pytest.mark.parametrize(
    ("word", "first", "last"),
    [
        ("today", date(2026, 4, 15), date(2026, 4, 15)),
        ("yesterday", date(2026, 4, 14), date(2026, 4, 14)),
        ("this-week", date(2026, 4, 13), date(2026, 4, 19)),
        ("last-week", date(2026, 4, 6), date(2026, 4, 12)),
        ("this-month", date(2026, 4, 1), date(2026, 4, 30)),
        ("last-month", date(2026, 3, 1), date(2026, 3, 31)),
        ("this-quarter", date(2026, 4, 1), date(2026, 6, 30)),
        ("last-quarter", date(2026, 1, 1), date(2026, 3, 31)),
        ("this-year", date(2026, 1, 1), date(2026, 12, 31)),
        ("last-year", date(2025, 1, 1), date(2025, 12, 31)),
        ("last-30-days", date(2026, 3, 17), date(2026, 4, 15)),
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2026-03-01..2026-03-31", date(2026, 3, 1), date(2026, 3, 31)),
        ("2026-03-05..2026-03-05", date(2026, 3, 5), date(2026, 3, 5)),
        ("LAST-MONTH", date(2026, 3, 1), date(2026, 3, 31)),
    ],
)
def test_each_word_with_a_fixed_clock(word, first, last):
    period = parse_period(word, TORONTO, NOW)
    assert (period.first_day, period.last_day) == (first, last)
    assert period.start == datetime(first.year, first.month, first.day, tzinfo=TORONTO)
    assert period.end == datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=TORONTO)


def test_every_word_is_covered_above():
    for word in WORDS:
        parse_period(word, TORONTO, NOW)


def test_today_is_the_firms_day_not_utcs():
    # 02:30 UTC on 1 January is still 31 December in Toronto.
    late = datetime(2026, 1, 1, 2, 30, tzinfo=UTC)
    assert parse_period("today", TORONTO, late).first_day == date(2025, 12, 31)
    assert parse_period("last-month", TORONTO, late).first_day == date(2025, 11, 1)
    assert parse_period("this-year", TORONTO, late).first_day == date(2025, 1, 1)
    assert parse_period("today", ZoneInfo("Asia/Tokyo"), late).first_day == date(2026, 1, 1)


def test_quarters_and_months_across_a_year_end():
    january = datetime(2026, 1, 20, 15, tzinfo=UTC)
    assert parse_period("last-quarter", TORONTO, january).first_day == date(2025, 10, 1)
    assert parse_period("last-quarter", TORONTO, january).last_day == date(2025, 12, 31)
    assert parse_period("last-month", TORONTO, january).last_day == date(2025, 12, 31)
    sunday = datetime(2026, 4, 19, 15, tzinfo=UTC)
    assert parse_period("this-week", TORONTO, sunday).first_day == date(2026, 4, 13)


def test_march_crosses_the_spring_forward_in_toronto():
    march = parse_period("2026-03", TORONTO, NOW)
    # Clocks went forward on 8 March: EST (-5) at the start, EDT (-4) at the end.
    assert march.start.astimezone(UTC) == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert march.end.astimezone(UTC) == datetime(2026, 4, 1, 4, tzinfo=UTC)
    assert _hours(march) == timedelta(days=31) - timedelta(hours=1)
    assert march.dates == "2026-03-01 to 2026-03-31 (America/Toronto)"


def test_november_crosses_the_fall_back_in_toronto():
    november = parse_period("2026-11", TORONTO, NOW)
    # Clocks went back on 1 November at 02:00, after the month began at midnight EDT.
    assert november.start.astimezone(UTC) == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert november.end.astimezone(UTC) == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert _hours(november) == timedelta(days=30) + timedelta(hours=1)


def test_a_day_that_starts_with_a_skipped_midnight():
    # Chile's clocks jumped from 00:00 to 01:00 on 2025-09-07: the day starts at the jump.
    santiago = ZoneInfo("America/Santiago")
    day = parse_period("2025-09-07..2025-09-07", santiago, NOW)
    assert day.start.astimezone(UTC) == datetime(2025, 9, 7, 4, tzinfo=UTC)
    assert _hours(day) == timedelta(hours=23)


@pytest.mark.parametrize("word", ["lastmonth", "march", "2026-13", "2026-3", "0000", "2026-02-30..2026-03-01",
                                  "2026-03-31..2026-03-01", "", "10000"])
def test_wrong_words_are_named_with_the_choices(word):
    with pytest.raises(PeriodError) as raised:
        parse_period(word, TORONTO, NOW)
    message = str(raised.value)
    assert repr(word) in message
    if word in ("lastmonth", "march", "2026-3", "", "10000"):
        assert "last-month" in message and "2026-03-01..2026-03-31" in message


def test_now_must_be_aware():
    with pytest.raises(ValueError):
        parse_period("today", TORONTO, datetime(2026, 4, 15))
