"""setup payments (admin): the firm's Stripe onboarding link."""

from __future__ import annotations

from gateway.commands import CommandError, Outcome, Run
from gateway.core.models import Level
from gateway.payments import connect
from gateway.payments.provider import PaymentError

name = "setup"
level = Level.ADMIN
example = "setup payments"
read_only = False


async def run(run: Run) -> Outcome:
    if [word.lower() for word in run.args] != ["payments"]:
        raise CommandError("Did you mean \"setup payments\"? It starts the Stripe sign-up that lets clients pay online.")
    ctx, deps = run.context, run.deps
    try:
        link = await connect.start_onboarding(ctx.firm, deps.payments, base_url=deps.settings.public_base_url,
                                              master_key=deps.master_key, now=ctx.now, actor=ctx.sender)
    except PaymentError as exc:
        raise CommandError(str(exc)) from None
    return Outcome(f"Set up payments for {ctx.firm.name}", connect.setup_reply(ctx.firm, link))
