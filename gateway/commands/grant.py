"""grant EMAIL LEVEL (admin): give a colleague a level, adding them to the
staff if they are new. Logged, confirmed to the admin, told to the colleague."""

from __future__ import annotations

from gateway.commands import CommandError, Notice, Outcome, Run
from gateway.commands.lastadmin import guard_last_admin
from gateway.core import directory
from gateway.core.models import Level, Staff

name = "grant"
level = Level.ADMIN
example = "grant colleague@firm.example send"
read_only = False

LEVEL_MEANING = {
    Level.NONE: "may not send anything yet",
    Level.SEND: "may send payment requests and follow their own",
    Level.REPORT: "may also see every request and get reports",
    Level.ADMIN: "may also manage users, cancel or refund any request and set up payments",
}


async def run(run: Run) -> Outcome:
    email = run.arg(0, "person", "grant colleague@firm.example send")
    word = run.arg(1, "level (none, send, report or admin)", f"grant {email} send")
    ctx = run.context
    try:
        new_level = directory.parse_level(word)
        email = directory.clean_email(email)
        await guard_last_admin(run, email, new_level)
        if await Staff.exists(firm=ctx.firm, email=email):
            await directory.set_level(ctx.firm, email, new_level, now=ctx.now, actor=ctx.sender)
        else:
            await directory.add_staff(ctx.firm, email, new_level, now=ctx.now, actor=ctx.sender)
    except directory.DirectoryError as exc:
        raise CommandError(str(exc).capitalize() + ".") from None
    told = Notice(email, f"You now have level {new_level.value} at {ctx.firm.name}", [
        f"{ctx.sender} gave you level \"{new_level.value}\" at {ctx.firm.name}: you {LEVEL_MEANING[new_level]}.",
        f"Write to {ctx.firm.gateway_address} with the subject \"help\" to see how.",
    ])
    return Outcome(f"Granted: {email} is {new_level.value}",
                   [f"{email} now has level \"{new_level.value}\" at {ctx.firm.name} and has been told."],
                   notices=[told])
