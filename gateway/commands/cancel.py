"""cancel INVOICE: the client's link stops working. Level send cancels its
own requests; admin cancels any, and the requester is told."""

from __future__ import annotations

from gateway.commands import CommandError, Notice, Outcome, Run
from gateway.commands.lookup import one_request
from gateway.core import events
from gateway.core.models import Level, RequestStatus

name = "cancel"
level = Level.SEND
example = "cancel 1042"
read_only = False

CANCELLABLE = (RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED, RequestStatus.BOUNCED)


async def run(run: Run) -> Outcome:
    word = run.arg(0, "invoice to cancel", "cancel 1042")
    request = await one_request(run, word, all_at=Level.ADMIN)
    if request.status not in CANCELLABLE:
        advice = " To give the money back, an admin can send \"refund " + word + "\"." \
            if request.status is RequestStatus.PAID else ""
        raise CommandError(f"Invoice {word} is {request.status.value} and cannot be cancelled.{advice}")
    ctx = run.context
    request.status, request.cancelled_at = RequestStatus.CANCELLED, ctx.now
    await request.save(update_fields=["status", "cancelled_at"])
    await events.record(ctx.now, ctx.sender, "request.cancelled", firm=ctx.firm, request=request)
    notices = []
    if request.sender != ctx.sender:
        notices.append(Notice(request.sender, f"Cancelled: invoice {word} to {request.client_email}",
                              [f"{ctx.sender} cancelled your payment request R{request.id} (invoice {word}) "
                               f"to {request.client_email}. The client's link no longer works."]))
    return Outcome(f"Cancelled: invoice {word}",
                   [f"Request R{request.id} (invoice {word}) to {request.client_email} is cancelled; "
                    "the client's link now says so and asks them to contact you."], notices=notices)
