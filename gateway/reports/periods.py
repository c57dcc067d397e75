"""PERIOD words: which days a report covers, in the firm's timezone.

A period is a run of whole calendar days, first and last day included.
Its instants are [start, end): midnight of the first day to midnight after
the last day, both in the firm's zone, so a month that crosses a
daylight-saving change is 743 or 745 hours long and still exactly the
month on the firm's wall clock.

Conventions, for the record:
- weeks start on Monday (ISO 8601);
- quarters are calendar quarters (January to March, ...): the model holds
  no fiscal year;
- ``this-...`` means the whole current week, month, quarter or year
  (days still to come hold no requests yet);
- ``last-30-days`` is today and the 29 days before it.

Pure: the caller passes ``now``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WORDS = (
    "today", "yesterday", "this-week", "last-week", "this-month", "last-month",
    "this-quarter", "last-quarter", "this-year", "last-year", "last-30-days",
)
SHAPES = ("2026", "2026-03", "2026-03-01..2026-03-31")

_YEAR = re.compile(r"(?P<year>\d{4})")
_MONTH = re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})")
_RANGE = re.compile(r"(?P<first>\d{4}-\d{2}-\d{2})\.\.(?P<last>\d{4}-\d{2}-\d{2})")
# datetime.date cannot go past 9999-12-31, and the day after it is needed.
_LAST_YEAR_ALLOWED = 9998


class PeriodError(ValueError):
    """A PERIOD word is wrong; the message names it and lists the choices."""


@dataclass(frozen=True)
class Period:
    word: str
    first_day: date
    last_day: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return _midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the period (exclusive)."""
        return _midnight(self.last_day + timedelta(days=1), self.zone)

    @property
    def dates(self) -> str:
        """The exact dates for people: "2026-03-01 to 2026-03-31 (America/Toronto)"."""
        if self.first_day == self.last_day:
            return f"{self.first_day.isoformat()} ({self.zone.key})"
        return f"{self.first_day.isoformat()} to {self.last_day.isoformat()} ({self.zone.key})"

    @property
    def slug(self) -> str:
        """For file names: "2026-03-01_2026-03-31"."""
        if self.first_day == self.last_day:
            return self.first_day.isoformat()
        return f"{self.first_day.isoformat()}_{self.last_day.isoformat()}"


def choices_text() -> str:
    return ", ".join(WORDS) + ", or a year, month or range like " + ", ".join(SHAPES)


def parse_period(word: str, zone: ZoneInfo, now: datetime) -> Period:
    """The period ``word`` names, as seen from ``now`` in ``zone``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    text = word.strip().lower()
    today = now.astimezone(zone).date()
    first, last = _relative(text, today) if text in WORDS else _absolute(word, text)
    return Period(text, first, last, zone)


def _relative(text: str, today: date) -> tuple[date, date]:
    if text == "today":
        return today, today
    if text == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if text == "last-30-days":
        return today - timedelta(days=29), today
    which, unit = text.split("-", 1)
    back = 1 if which == "last" else 0
    if unit == "week":
        monday = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
        return monday, monday + timedelta(days=6)
    if unit == "month":
        year, month = _months_before(today.year, today.month, back)
        return _month(year, month)
    if unit == "quarter":
        first_month = 3 * ((today.month - 1) // 3) + 1
        year, month = _months_before(today.year, first_month, 3 * back)
        return date(year, month, 1), _month(*_months_before(year, month, -2))[1]
    return date(today.year - back, 1, 1), date(today.year - back, 12, 31)


def _absolute(word: str, text: str) -> tuple[date, date]:
    if match := _YEAR.fullmatch(text):
        year = _year(word, int(match["year"]))
        return date(year, 1, 1), date(year, 12, 31)
    if match := _MONTH.fullmatch(text):
        year, month = _year(word, int(match["year"])), int(match["month"])
        if not 1 <= month <= 12:
            raise PeriodError(f"{word!r} is not a month: months run from 01 to 12, like 2026-03.")
        return _month(year, month)
    if match := _RANGE.fullmatch(text):
        first, last = _day(word, match["first"]), _day(word, match["last"])
        if last < first:
            raise PeriodError(f"{word!r} ends before it starts: write the first day first, like {SHAPES[2]}.")
        return first, last
    raise PeriodError(f"{word!r} is not a period: choose {choices_text()}.")


def _year(word: str, year: int) -> int:
    if not 1 <= year <= _LAST_YEAR_ALLOWED:
        raise PeriodError(f"{word!r} is not a year a report can cover.")
    return year


def _day(word: str, text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{word!r} has a date that does not exist ({text}).") from None
    _year(word, day.year)
    return day


def _months_before(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) - count
    return index // 12, index % 12 + 1


def _month(year: int, month: int) -> tuple[date, date]:
    next_year, next_month = _months_before(year, month, -1)
    return date(year, month, 1), date(next_year, next_month, 1) - timedelta(days=1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # Where midnight itself is skipped by a DST jump, zoneinfo (fold=0) maps
    # it to the first instant after the gap: still the start of that day.
    return datetime.combine(day, time(0), tzinfo=zone)
