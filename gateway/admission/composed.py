"""Mail composed on the dashboard, admitted like mail that came by SMTP.

The dashboard's compose form builds the message a staff member would have
written (web/staff/compose.py) and hands it here: the same hourly limits
and staff check, in the same transaction as the insert into the inbound
queue (intake.py), and from there the same runner, rules and handler as
any mail. The sender is the signed-in member: their session stands for the
DKIM check a mail would have passed.

The web app may not import this stage (tests/test_layout.py): the service
gives it a ``Composed`` as ``deps.submit``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Callable

from gateway.admission.intake import Intake, Verdict
from gateway.deps import NotAdmitted
from gateway.inbound import queue as inbound

# What the form says when the gateway would not take it (NotAdmitted.reason).
# (A composed message carries no signed Message-ID, so it is never a replay.)
REASONS = {
    Verdict.NOT_STAFF: "not_staff",
    Verdict.REPLAYED: "replayed",
    Verdict.SENDER_LIMIT: "sender_limit",
    Verdict.FIRM_LIMIT: "firm_limit",
}


class Composed:
    def __init__(self, intake: Intake, master_key: bytes, clock: Callable[[], datetime], wake: asyncio.Event) -> None:
        self.intake = intake
        self.master_key = master_key
        self.clock = clock
        self.wake = wake

    async def __call__(self, raw: bytes, *, sender: str, firm_domain: str, rcpt: str, peer: str) -> str:
        """Queue the message; its queue id. Raises NotAdmitted as SMTP would
        have answered 550 or 451."""
        arrival = inbound.arrival(raw, master_key=self.master_key, mail_from=sender, sender=sender,
                                  firm_domain=firm_domain, rcpt_tos=[rcpt],
                                  peer=peer, trusted_peer=False, now=self.clock())
        verdict = await self.intake.admit(arrival)
        if verdict is not Verdict.ADMITTED:
            raise NotAdmitted(REASONS[verdict])
        self.wake.set()
        return arrival.queue_id
