"""What came back to a bounce address, applied: a permanent failure of a
client's mail makes its request bounced and tells the staff member
(outbound/bounced.py); a delayed report, a success report, an automatic
reply or anything else is recorded as an event and changes nothing. Nothing
here ever sends mail to whoever wrote the message: the only mail it makes
is the notice to the firm's own staff member.

The message is matched by its bounce address (vault/verp.py), verified
again here, never by anything the report says about itself.
"""

from __future__ import annotations

import asyncio
import logging

from tortoise.transactions import in_transaction

from gateway.core import events
from gateway.core.models import Firm, InboundMessage, OutboundMessage, OutboundStatus, PaymentRequest
from gateway.deps import Deps
from gateway.inbound import queue as inbound
from gateway.mail import dsn
from gateway.outbound import outbox
from gateway.outbound.bounced import mark_bounced
from gateway.vault.verp import Verp, shaped_like

log = logging.getLogger("clienttrack.bounces")

# The event each kind of report leaves on the request (or the firm).
ACTIONS = {
    dsn.Kind.DELAYED: "delivery.delayed",
    dsn.Kind.DELIVERED: "delivery.reported",
    dsn.Kind.AUTO_REPLY: "delivery.auto-reply",
    dsn.Kind.OTHER: "delivery.other",
}


def is_bounce(queued: InboundMessage) -> bool:
    """Admission queued it through its bounce door (admission/bounces.py)."""
    return len(queued.rcpt_tos) == 1 and shaped_like(queued.rcpt_tos[0])


async def process_bounce(deps: Deps, queued: InboundMessage) -> None:
    now = deps.clock()
    address = Verp(deps.master_key).verify(queued.rcpt_tos[0])
    item = await OutboundMessage.get_or_none(id=address.outbound_id) if address else None
    if item is None:
        await inbound.finish(queued, "report for no message of ours", now)
        return
    raw = inbound.open_raw(queued, deps.master_key)
    if queued.body_blob:  # past the large threshold: its body is in the blob store
        raw += b"".join([piece async for piece in inbound.open_body(queued, deps.master_key, deps.blobs, len(raw))])
    report = await asyncio.to_thread(dsn.read, raw)
    firm = await Firm.get_or_none(domain=address.domain)
    request = await PaymentRequest.get_or_none(id=item.request_id) if item.request_id else None
    notice = None
    async with in_transaction():
        if report.kind is dsn.Kind.FAILED:
            reason = " ".join(part for part in (report.status, report.diagnostic) if part) or "no reason given"
            await OutboundMessage.filter(id=item.id).update(status=OutboundStatus.FAILED,
                                                            last_error=f"bounced: {reason}"[:2000])
            notice = await mark_bounced(item, reason, now, actor=report.remote_mta or "mailer-daemon")
            if notice is not None:
                await outbox.enqueue_bounce_notice(deps.composer, notice, master_key=deps.master_key, now=now)
            else:
                await events.record(now, "system", "delivery.failed", firm=firm, request=request,
                                    address=item.rcpt_to, kind=item.kind, reason=reason[:300], outbound_id=item.id)
        else:
            if report.kind in (dsn.Kind.DELAYED, dsn.Kind.DELIVERED):
                detail = {"status": report.status, "reason": report.diagnostic}
            else:  # an auto-reply's subject says what it is ("Out of office until May 20")
                detail = {"subject": report.subject[:120]}
            await events.record(now, "system", ACTIONS[report.kind], firm=firm, request=request,
                                address=item.rcpt_to, kind=item.kind, outbound_id=item.id,
                                **{k: v for k, v in detail.items() if v})
        await inbound.finish(queued, f"report: {report.kind.value} for outbound {item.id}", now)
    log.info("queue %s: %s report for outbound %s (%s)", queued.id, report.kind.value, item.id, item.kind)
    if notice is not None:
        deps.outbox_wake.set()
