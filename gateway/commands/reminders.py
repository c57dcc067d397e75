"""reminders (admin): the firm's reminder schedule; ``reminders after
3d,7d before-expiry 2d`` changes it, ``reminders off`` stops it. The
schedule itself runs in housekeeping (gateway/reminders/chase.py)."""

from __future__ import annotations

from gateway.commands import CommandError, Outcome, Run
from gateway.core.models import Level
from gateway.reminders import schedule

name = "reminders"
level = Level.ADMIN
example = "reminders after 3d,7d before-expiry 2d"
read_only = False

_PARTS = {"after": "after", "before-expiry": "before", "before": "before"}


async def run(run: Run) -> Outcome:
    ctx = run.context
    words = [word.lower() for word in run.args]
    if words == ["off"]:
        await schedule.set_schedule(ctx.firm, after=(), before=(), now=ctx.now, actor=ctx.sender)
    elif words:
        given: dict[str, tuple[int, ...]] = {}
        if len(words) % 2 or any(word not in _PARTS for word in words[::2]):
            raise CommandError(f"Write the schedule like \"{example}\" (days after sending, and days before the "
                               "link expires), \"reminders off\", or \"reminders\" alone to see it.")
        for part, days in zip(words[::2], words[1::2]):
            try:
                given[_PARTS[part]] = schedule.parse_days(days, part)
            except schedule.ScheduleError as exc:
                raise CommandError(str(exc)) from None
        await schedule.set_schedule(ctx.firm, after=given.get("after"), before=given.get("before"), now=ctx.now,
                                    actor=ctx.sender)
    firm = ctx.firm
    described = schedule.describe(firm.reminder_after, firm.reminder_before_expiry)
    return Outcome(f"Reminders at {firm.name}: {described}", [
        f"Unanswered requests (unpaid, or a secure message unread or still waiting for a document) are sent to "
        f"the client again, with the same link: {described}. At most once a day, from "
        f"{schedule.REMIND_HOUR}:00 in the firm's timezone ({firm.timezone}), never once paid, cancelled or "
        "expired, and never for a request sent with remind=no.",
        "Each staff member gets one mail a day listing their requests reminded, and those expiring tomorrow unpaid.",
        f"Change it with \"{example}\", or stop it with \"reminders off\".",
    ])
