"""report FORMAT PERIOD [STATUS] (report): the file comes back attached,
with a summary; an empty period says so; a wrong word is named."""

from __future__ import annotations

from gateway.commands import CommandError, Outcome, Run
from gateway.core.models import Level
from gateway.reports.mail import build_report_reply

name = "report"
level = Level.REPORT
example = "report csv last-month paid"
read_only = True


async def run(run: Run) -> Outcome:
    ctx = run.context
    reply = await build_report_reply(ctx.firm, ctx.staff, run.args, ctx.now)
    if isinstance(reply, str):
        raise CommandError(reply)
    text, attachments = reply
    return Outcome(f"Report: {' '.join(run.args)}", text.splitlines(), attachments=attachments)
