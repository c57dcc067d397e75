"""A firm's reminder schedule, as days: reminders go on the days that are
``after`` days past the day a request was sent, and ``before`` days ahead
of the day it expires (each day in the firm's timezone), at REMIND_HOUR or
the first run after it. Pure functions, except set_schedule, which saves
it. Who is reminded, and the once-a-day rule, are in chase.py."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from gateway.core import events
from gateway.core.models import Firm

# Reminders and the staff's digest go from this hour of the firm's day: a
# client hears in the morning, and a staff member gets one mail a day.
REMIND_HOUR = 9
# A request is never reminded twice within this long, by the schedule or by
# the remind command.
ONCE_A_DAY = timedelta(days=1)
MAX_DAYS = 365
MAX_STEPS = 10

_DAYS = re.compile(r"(\d{1,3})\s*d?(?:ays?)?", re.IGNORECASE)
_NONE = ("", "none", "off", "no")


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says how to write one."""


def parse_days(text: str, what: str) -> tuple[int, ...]:
    """ "3d,7d" (or "3,7", "3 days") as (3, 7); "none" as (). ``what`` names
    the option in the message."""
    text = text.strip().lower()
    if text in _NONE:
        return ()
    days = []
    for part in text.split(","):
        match = _DAYS.fullmatch(part.strip())
        if match is None or not 1 <= int(match[1]) <= MAX_DAYS:
            raise ScheduleError(f"{what}: {part.strip()!r} is not a number of days from 1 to {MAX_DAYS}; "
                                "write them like 3d,7d (or none)")
        days.append(int(match[1]))
    if len(set(days)) > MAX_STEPS:
        raise ScheduleError(f"{what}: at most {MAX_STEPS} days")
    return tuple(sorted(set(days)))


def describe(after: list[int] | tuple[int, ...], before: list[int] | tuple[int, ...]) -> str:
    """ "3d and 7d after sending, 2d before expiry", or "off"."""
    parts = []
    if after:
        parts.append(" and ".join(f"{d}d" for d in after) + " after sending")
    if before:
        parts.append(" and ".join(f"{d}d" for d in before) + " before expiry")
    return ", ".join(parts) or "off"


def days(sent_on: date, expires_on: date, after: list[int], before: list[int]) -> list[date]:
    """The days a request sent on ``sent_on`` and expiring on ``expires_on``
    is reminded: only days after it was sent and before it expires."""
    wanted = {sent_on + timedelta(days=d) for d in after} | {expires_on - timedelta(days=d) for d in before}
    return sorted(day for day in wanted if sent_on < day < expires_on)


def due(schedule: list[date], done_through: date, today: date) -> bool:
    """Whether a reminder day after ``done_through`` (the last one dealt
    with, or the day it was sent) has come. Several that came together (the
    gateway was down) make one reminder."""
    return any(done_through < day <= today for day in schedule)


def local_day(moment: datetime, zone) -> date:
    return moment.astimezone(zone).date()


async def set_schedule(firm: Firm, *, after: tuple[int, ...] | None, before: tuple[int, ...] | None, now: datetime,
                       actor: str) -> Firm:
    """Change the firm's schedule (None: leave that part as it is); an event records it."""
    changed = []
    if after is not None:
        firm.reminder_after = list(after)
        changed.append("reminder_after")
    if before is not None:
        firm.reminder_before_expiry = list(before)
        changed.append("reminder_before_expiry")
    if changed:
        await firm.save(update_fields=changed)
        await events.record(now, actor, "firm.reminders", firm=firm,
                            schedule=describe(firm.reminder_after, firm.reminder_before_expiry))
    return firm
