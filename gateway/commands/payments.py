"""refund INVOICE [AMOUNT] and setup payments (admin), through the payment
provider the gateway runs with."""

from __future__ import annotations

from gateway.commands import CommandError, Outcome, Run
from gateway.commands.lookup import one_request
from gateway.core.models import Level, RequestStatus
from gateway.core.money import MoneyError, format_display, to_minor
from gateway.payments import connect, ledger
from gateway.payments.provider import PaymentError

REFUNDABLE = (RequestStatus.PAID, RequestStatus.PARTIALLY_REFUNDED)


async def run_refund(run: Run) -> Outcome:
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


async def run_setup(run: Run) -> Outcome:
    if [word.lower() for word in run.args] != ["payments"]:
        raise CommandError("Did you mean \"setup payments\"? It starts the Stripe sign-up that lets clients pay online.")
    ctx, deps = run.context, run.deps
    try:
        link = await connect.start_onboarding(ctx.firm, deps.payments, base_url=deps.settings.public_base_url,
                                              master_key=deps.master_key, now=ctx.now, actor=ctx.sender)
    except PaymentError as exc:
        raise CommandError(str(exc)) from None
    return Outcome(f"Set up payments for {ctx.firm.name}", connect.setup_reply(ctx.firm, link))
