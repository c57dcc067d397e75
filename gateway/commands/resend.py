"""resend INVOICE to=ADDR: after a bounce, the client's mail again, to a
corrected address. The request stays the one it was (its password, hint,
link and files): only the address changes, so nobody has to agree on a new
password. Only a bounced request: its mail is known not to have arrived,
so the link still reaches one person, not two."""

from __future__ import annotations

from gateway.commands import CommandError, Mail, Notice, Outcome, Run
from gateway.commands.lookup import one_request
from gateway.core import events
from gateway.core.models import Level, PaymentRequest, RequestStatus, Staff
from gateway.core.settings import zone
from gateway.mail.values import read_address
from gateway.outbound import clientmail
from gateway.reminders import schedule

name = "resend"
level = Level.SEND
example = "resend 1042 to=jane@client.example"
read_only = False


def new_address(run: Run) -> str:
    words = [word for word in run.args[1:] if word.lower() not in ("to", "=")]
    if len(words) != 1:
        raise CommandError(f"Say which address to send it to, for example: {example}")
    word = words[0]
    for prefix in ("to=", "client="):
        if word.lower().startswith(prefix):
            word = word[len(prefix):]
    try:
        return read_address(word)
    except ValueError as invalid:
        raise CommandError(str(invalid)) from None


async def run(run: Run) -> Outcome:
    word = run.arg(0, "invoice to send again", example)
    address = new_address(run)
    ctx = run.context
    request = await one_request(run, word, all_at=Level.ADMIN)
    if request.status is not RequestStatus.BOUNCED:
        raise CommandError(f"Invoice {word} is {request.status.value}, not bounced: resend is for a mail that "
                           f"came back. To send the client the link again, write \"remind {word}\".")
    if request.expires_at <= ctx.now:
        raise CommandError(f"Invoice {word}'s link has expired; send a new request instead.")
    if request.sealed_token is None:
        raise CommandError(f"Invoice {word} was made before resending existed; send a new request instead.")
    old = request.client_email
    if address == old:
        raise CommandError(f"{address} is the address that bounced; give the corrected one, for example: {example}")
    if address.rpartition("@")[2] == ctx.firm.domain:
        raise CommandError(f"{address} is one of this gateway's own addresses, not the client's.")
    what = f"invoice {request.invoice}" if request.invoice else f"R{request.id}"
    named = f"R{request.id} (invoice {request.invoice})" if request.invoice else f"R{request.id}"
    # Conditional: a client who opened the link meanwhile (it did arrive) keeps it viewed. The schedule's
    # reminders due by today are done with: the client gets the mail now.
    today = schedule.local_day(ctx.now, zone(ctx.firm.timezone))
    if not await PaymentRequest.filter(id=request.id, status=RequestStatus.BOUNCED).update(
            client_email=address, status=RequestStatus.SENT, reminded_through=today):
        raise CommandError(f"Invoice {word} changed meanwhile; send \"status {word}\" to see where it stands.")
    request.client_email, request.status, request.reminded_through = address, RequestStatus.SENT, today
    staff = await Staff.get_or_none(firm=ctx.firm, email=request.sender)
    mail = clientmail.compose(run.deps, request, ctx.firm, staff, clientmail.open_token(run.deps.master_key, request),
                              ctx.now)
    await events.record(ctx.now, ctx.sender, "request.resent", firm=ctx.firm, request=request,
                        bounced=old, to=address)
    notices = []
    if request.sender != ctx.sender:
        notices.append(Notice(request.sender, f"Resent: {what} to {address}",
                              [f"{ctx.sender} sent your request {named} to "
                               f"{address}, after it bounced at {old}."]))
    return Outcome(f"Resent: {what} to {address}",
                   [f"Request {named} is on its way to {address}, with the same password "
                    f"hint and link; {old} no longer gets anything about it.",
                    f"Send \"status {word}\" to see where it stands."],
                   notices=notices,
                   # Sent as the request's own mail: another bounce comes back to it too.
                   mails=[Mail(mail, "client-request", request, request.sender)])
