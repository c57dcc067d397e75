"""A firm always keeps an admin: grant and revoke refuse to take the level
away from its only one."""

from __future__ import annotations

from gateway.commands import CommandError, Run
from gateway.core.models import Level, Staff


async def guard_last_admin(run: Run, email: str, new_level: Level | None) -> None:
    if new_level is Level.ADMIN:
        return
    admins = await Staff.filter(firm=run.context.firm, level=Level.ADMIN).values_list("email", flat=True)
    if list(admins) == [email]:
        raise CommandError(f"{email} is the firm's only admin; grant admin to someone else first.")
