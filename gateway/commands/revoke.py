"""revoke EMAIL (admin): take a colleague off the staff. Logged, confirmed
to the admin, told to the colleague."""

from __future__ import annotations

from gateway.commands import CommandError, Notice, Outcome, Run
from gateway.commands.lastadmin import guard_last_admin
from gateway.core import directory
from gateway.core.models import Level

name = "revoke"
level = Level.ADMIN
example = "revoke colleague@firm.example"
read_only = False


async def run(run: Run) -> Outcome:
    email = run.arg(0, "person", "revoke colleague@firm.example")
    ctx = run.context
    try:
        email = directory.clean_email(email)
        await guard_last_admin(run, email, None)
        await directory.remove_staff(ctx.firm, email, now=ctx.now, actor=ctx.sender)
    except directory.DirectoryError as exc:
        raise CommandError(str(exc).capitalize() + ".") from None
    told = Notice(email, f"Your access to {ctx.firm.gateway_address} was removed", [
        f"{ctx.sender} removed your access to {ctx.firm.gateway_address}. "
        "Mail you send there is now refused. Your earlier requests stay as they are."])
    return Outcome(f"Revoked: {email}", [f"{email} can no longer use {ctx.firm.gateway_address} and has been told."],
                   notices=[told])
