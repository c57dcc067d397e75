"""dashboard (or login): a one-time link to the firm's dashboard, by reply.
The mailbox is the key: the link goes only to the sender's own address,
works once, within minutes (gateway/vault/signin.py)."""

from __future__ import annotations

from gateway.commands import Outcome, Run
from gateway.core.models import Level
from gateway.vault import signin

name = "dashboard"
aliases = ("login",)
# Someone at level none could not use the dashboard: the level check answers them.
level = Level.SEND
example = "dashboard"
read_only = False


async def run(run: Run) -> Outcome:
    ctx = run.context
    link = await signin.new_link(ctx.staff, base_url=run.deps.settings.public_base_url, now=ctx.now,
                                 actor=ctx.sender)
    minutes = int(signin.TTL.total_seconds() // 60)
    return Outcome(f"Your sign-in link to {ctx.firm.name}'s dashboard", [
        f"Open this link to sign in to {ctx.firm.name}'s dashboard as {ctx.sender}:",
        f"    {link}",
        f"It works once, within {minutes} minutes, and only to sign you in. If it has expired, "
        f"send \"dashboard\" to {ctx.firm.gateway_address} again.",
        "If you did not ask for it, you can ignore this mail: the link is no use without your mailbox.",
    ])
