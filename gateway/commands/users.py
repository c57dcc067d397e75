"""users, grant EMAIL LEVEL, revoke EMAIL (admin): who may do what. Every
change is logged, confirmed to the admin and told to the person it affects."""

from __future__ import annotations

from gateway.commands import CommandError, Notice, Outcome, Run
from gateway.core import directory
from gateway.core.models import Level, Staff

LEVEL_MEANING = {
    Level.NONE: "may not send anything yet",
    Level.SEND: "may send payment requests and follow their own",
    Level.REPORT: "may also see every request and get reports",
    Level.ADMIN: "may also manage users, cancel or refund any request and set up payments",
}


async def run_users(run: Run) -> Outcome:
    staff = await Staff.filter(firm=run.context.firm).order_by("email")
    rows = [f"    {s.email:<40} {s.level.value}" for s in staff]
    return Outcome(f"Users of {run.context.firm.gateway_address}",
                   [f"{len(staff)} people may write to {run.context.firm.gateway_address}:", "\n".join(rows),
                    "Change one with \"grant EMAIL LEVEL\" (none, send, report, admin) or \"revoke EMAIL\"."])


async def _guard_last_admin(run: Run, email: str, new_level: Level | None) -> None:
    if new_level is Level.ADMIN:
        return
    admins = await Staff.filter(firm=run.context.firm, level=Level.ADMIN).values_list("email", flat=True)
    if list(admins) == [email]:
        raise CommandError(f"{email} is the firm's only admin; grant admin to someone else first.")


async def run_grant(run: Run) -> Outcome:
    email = run.arg(0, "person", "grant colleague@firm.example send")
    word = run.arg(1, "level (none, send, report or admin)", f"grant {email} send")
    ctx = run.context
    try:
        level = directory.parse_level(word)
        email = directory.clean_email(email)
        await _guard_last_admin(run, email, level)
        if await Staff.exists(firm=ctx.firm, email=email):
            await directory.set_level(ctx.firm, email, level, now=ctx.now, actor=ctx.sender)
        else:
            await directory.add_staff(ctx.firm, email, level, now=ctx.now, actor=ctx.sender)
    except directory.DirectoryError as exc:
        raise CommandError(str(exc).capitalize() + ".") from None
    told = Notice(email, f"You now have level {level.value} at {ctx.firm.name}", [
        f"{ctx.sender} gave you level \"{level.value}\" at {ctx.firm.name}: you {LEVEL_MEANING[level]}.",
        f"Write to {ctx.firm.gateway_address} with the subject \"help\" to see how.",
    ])
    return Outcome(f"Granted: {email} is {level.value}",
                   [f"{email} now has level \"{level.value}\" at {ctx.firm.name} and has been told."],
                   notices=[told])


async def run_revoke(run: Run) -> Outcome:
    email = run.arg(0, "person", "revoke colleague@firm.example")
    ctx = run.context
    try:
        email = directory.clean_email(email)
        await _guard_last_admin(run, email, None)
        await directory.remove_staff(ctx.firm, email, now=ctx.now, actor=ctx.sender)
    except directory.DirectoryError as exc:
        raise CommandError(str(exc).capitalize() + ".") from None
    told = Notice(email, f"Your access to {ctx.firm.gateway_address} was removed", [
        f"{ctx.sender} removed your access to {ctx.firm.gateway_address}. "
        "Mail you send there is now refused. Your earlier requests stay as they are."])
    return Outcome(f"Revoked: {email}", [f"{email} can no longer use {ctx.firm.gateway_address} and has been told."],
                   notices=[told])
