"""remind INVOICE: send the client's mail again, with the same link; at
most once a day a request, counting the firm's reminder schedule's
(gateway/reminders), so a client is never flooded."""

from __future__ import annotations

from gateway.commands import CommandError, Mail, Outcome, Run
from gateway.commands.lookup import one_request
from gateway.core import events
from gateway.core.models import Level, PaymentRequest, RequestStatus, Staff
from gateway.core.settings import zone
from gateway.outbound import clientmail
from gateway.reminders import schedule
from gateway.reminders.chase import last_reminded

name = "remind"
level = Level.SEND
example = "remind 1042"
read_only = False

REMINDABLE = (RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED)


async def run(run: Run) -> Outcome:
    word = run.arg(0, "invoice to remind the client of", "remind 1042")
    ctx = run.context
    request = await one_request(run, word, all_at=Level.ADMIN)
    if request.status is RequestStatus.BOUNCED:
        raise CommandError(f"Invoice {word}'s mail to {request.client_email} bounced: send it to the right address "
                           f"with \"resend {word} to=corrected@address\".")
    if request.status not in REMINDABLE:
        raise CommandError(f"Invoice {word} is {request.status.value}: there is nothing to remind the client of.")
    if request.expires_at <= ctx.now:
        raise CommandError(f"Invoice {word}'s link has expired; send a new request instead.")
    last = await last_reminded(request)
    if last is not None and ctx.now - last < schedule.ONCE_A_DAY:
        raise CommandError(f"{request.client_email} was reminded of invoice {word} on "
                           f"{last:%Y-%m-%d at %H:%M} UTC; a reminder can go once a day.")
    if request.sealed_token is None:
        raise CommandError(f"Invoice {word} was made before reminders existed; send a new request instead.")
    staff = await Staff.get_or_none(firm=ctx.firm, email=request.sender)
    token = clientmail.open_token(run.deps.master_key, request)
    mail = clientmail.compose(run.deps, request, ctx.firm, staff, token, ctx.now, reminder=True)
    # The schedule's reminders due by today are done with: this one stands for them.
    await PaymentRequest.filter(id=request.id).update(
        reminded_through=schedule.local_day(ctx.now, zone(ctx.firm.timezone)))
    await events.record(ctx.now, ctx.sender, "request.reminded", firm=ctx.firm, request=request)
    return Outcome(f"Reminded: invoice {word}",
                   [f"{request.client_email} has been sent the request for invoice {word} again, "
                    "with the same link and password hint."],
                   mails=[Mail(mail, "client-reminder", request, request.sender)])
