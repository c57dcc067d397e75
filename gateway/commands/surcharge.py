"""surcharge (admin): the firm's card-fee terms; ``surcharge notice
YYYY-MM-DD`` records the day it gave the card networks notice, and
``+fee`` works 30 days after it (gateway/payments/surcharge.py)."""

from __future__ import annotations

from datetime import date

from gateway.commands import CommandError, Outcome, Run
from gateway.core.models import Level
from gateway.payments import surcharge

name = "surcharge"
level = Level.ADMIN
example = "surcharge notice 2026-03-01"
read_only = False


async def run(run: Run) -> Outcome:
    ctx, deps = run.context, run.deps
    words = [word.lower() for word in run.args]
    firm = ctx.firm
    if words:
        if words[0] != "notice" or len(words) != 2:
            raise CommandError(f"Write \"{example}\" with the day your firm gave the card networks notice "
                               "(or \"surcharge\" alone to see the card-fee terms).")
        try:
            day = date.fromisoformat(words[1])
        except ValueError:
            raise CommandError(f"{run.args[1]!r} is not a date: write it like 2026-03-01.") from None
        if day > surcharge.local_day(firm, ctx.now):
            raise CommandError("Record the notice once it is given, not before.")
        await surcharge.record_notice(firm, day, now=ctx.now, actor=ctx.sender)
    today = surcharge.local_day(firm, ctx.now)
    return Outcome(f"Card fee terms of {firm.name}", surcharge.describe(firm, deps.payments.config, today))
