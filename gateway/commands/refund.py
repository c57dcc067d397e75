"""refund INVOICE [AMOUNT] (admin): all or part of a paid request, through
the payment provider the gateway runs with."""

from __future__ import annotations

from gateway.commands import CommandError, Outcome, Run
from gateway.commands.lookup import one_request
from gateway.core.models import Level, RequestStatus
from gateway.core.money import MoneyError, format_display, to_minor
from gateway.payments import ledger
from gateway.payments.provider import PaymentError

name = "refund"
level = Level.ADMIN
example = "refund 1042"
read_only = False

REFUNDABLE = (RequestStatus.PAID, RequestStatus.PARTIALLY_REFUNDED)


async def run(run: Run) -> Outcome:
    word = run.arg(0, "invoice to refund", "refund 1042 (all of it) or refund 1042 50.00 (part)")
    request = await one_request(run, word, all_at=Level.ADMIN)
    if request.status not in REFUNDABLE:
        raise CommandError(f"Invoice {word} is {request.status.value}: only a paid request can be refunded.")
    amount_minor = None
    if len(run.args) > 1:
        try:
            amount_minor = to_minor(run.args[1].lstrip("$"), request.currency)
        except MoneyError as exc:
            raise CommandError(f"The amount to refund: {exc}") from None
    try:
        result = await ledger.refund(request, run.deps.payments, run.deps, actor=run.context.sender,
                                     amount_minor=amount_minor)
    except PaymentError as exc:
        raise CommandError(str(exc)) from None
    return Outcome(f"Refund: invoice {word}", [
        f"{format_display(result.amount_minor, request.currency)} of invoice {word} is being refunded to "
        f"{request.client_email} (refund {result.refund_id}: {result.status}).",
        "The client's bank shows it within 5 to 10 business days.",
    ])
