"""`clienttrack firm reminders DOMAIN [--after 3d,7d] [--before-expiry 2d]`:
a firm's reminder schedule, shown or changed."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from gateway.core import db, directory
from gateway.core.clock import system_clock
from gateway.reminders import schedule


def add_parser(firm_actions, common: Callable[[argparse.ArgumentParser], None]) -> None:
    reminders = firm_actions.add_parser("reminders", help="when unanswered requests are sent to the client again")
    common(reminders)
    reminders.add_argument("domain")
    reminders.add_argument("--after", metavar="DAYS", help="days after sending, like 3d,7d (none: no such reminders)")
    reminders.add_argument("--before-expiry", metavar="DAYS", help="days before the link expires, like 2d (none: no "
                           "such reminders)")
    reminders.set_defaults(run=cmd_firm_reminders)


def cmd_firm_reminders(args: argparse.Namespace, settings) -> int:
    try:
        after = schedule.parse_days(args.after, "--after") if args.after is not None else None
        before = schedule.parse_days(args.before_expiry, "--before-expiry") if args.before_expiry is not None else None
    except schedule.ScheduleError as exc:
        print(f"clienttrack: {exc}", file=sys.stderr)
        return 2

    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        await schedule.set_schedule(firm, after=after, before=before, now=system_clock(), actor="cli")
        described = schedule.describe(firm.reminder_after, firm.reminder_before_expiry)
        print(f"{firm.name} ({firm.domain}): reminders {described}")
        return 0
    return db.run(settings, work)
