"""status [INVOICE]: one request's history, or the latest 20 as a table.
Level send sees its own requests; report and admin see the firm's."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway.commands import Outcome, Run
from gateway.commands.lookup import one_request, visible
from gateway.core.models import Event, Level, PaymentRequest, RequestKind
from gateway.core.money import format_display
from gateway.replies import checklist

name = "status"
level = Level.SEND
example = "status 1042"
read_only = True

LATEST = 20


def amount_of(request: PaymentRequest) -> str:
    """The amount asked, or "secure message" for one without payment."""
    if request.kind is RequestKind.MESSAGE:
        return "secure message"
    return format_display(request.amount_minor, request.currency)


async def run(run: Run) -> Outcome:
    zone = ZoneInfo(run.context.firm.timezone)
    if run.args:
        request = await one_request(run, run.args[0], all_at=Level.REPORT)
        history = await Event.filter(request=request).order_by("at", "id")
        lines = [f"    {e.at.astimezone(zone):%Y-%m-%d %H:%M}  {e.action.removeprefix('request.'):<10} {e.actor}"
                 for e in history]
        paragraphs = [f"R{request.id}, invoice {request.invoice or '-'}, to {request.client_email}: "
                      f"{amount_of(request)}, {request.status.value}."
                      + (f" Its message and files were deleted on {request.documents_removed_at.astimezone(zone):%Y-%m-%d}"
                         " (retention)." if request.documents_removed_at else "")]
        if request.upload_items:
            paragraphs.append(f"Documents: {checklist.summary(await checklist.checklist(request))}.")
        paragraphs.append("History (" + str(zone) + "):\n" + "\n".join(lines))
        return Outcome(f"Status: invoice {request.invoice or 'R' + str(request.id)}", paragraphs)
    latest = await visible(run, all_at=Level.REPORT).order_by("-id").limit(LATEST)
    if not latest:
        return Outcome("Status: no requests yet", ["There are no payment requests yet."])
    rows = [f"    {'REF':<7} {'INVOICE':<10} {'CLIENT':<28} {'AMOUNT':>18}  {'STATUS':<9} CREATED"]
    rows += [
        f"    R{r.id:<6} {r.invoice[:10]:<10} {r.client_email[:28]:<28} "
        f"{amount_of(r):>18}  {r.status.value:<9} {r.created_at.astimezone(zone):%Y-%m-%d}"
        for r in latest
    ]
    whose = "the firm's" if run.context.level.allows(Level.REPORT) else "your"
    return Outcome(f"Status: {whose} latest requests",
                   [f"The latest {len(latest)} of {whose} requests, newest first:", "\n".join(rows),
                    "Send \"status 1042\" for one request's history."])
