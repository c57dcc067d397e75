"""users (admin): who may write to the firm's gateway, at which level."""

from __future__ import annotations

from gateway.commands import Outcome, Run
from gateway.core.models import Level, Staff

name = "users"
level = Level.ADMIN
example = "users"
read_only = True


async def run(run: Run) -> Outcome:
    staff = await Staff.filter(firm=run.context.firm).order_by("email")
    rows = [f"    {s.email:<40} {s.level.value}" for s in staff]
    return Outcome(f"Users of {run.context.firm.gateway_address}",
                   [f"{len(staff)} people may write to {run.context.firm.gateway_address}:", "\n".join(rows),
                    "Change one with \"grant EMAIL LEVEL\" (none, send, report, admin) or \"revoke EMAIL\"."])
