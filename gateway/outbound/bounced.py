"""A client's mail that did not arrive: its request becomes ``bounced`` and
the staff member who sent it hears it once, with the address, the remote
server's reason and what to do (``resend INVOICE to=ADDR``).

Two ways to learn it, one outcome: the relay refusing the address for good
(outbox.py) and a delivery status notification coming back to the
message's bounce address (handlers/bounce.py). Only a request still
``sent`` to that very address changes: once the client has opened it (or
paid), a late or forged report cannot undo that, and after ``resend`` a
report about the old address changes nothing. The status change is
conditional, so two reports arriving together make one notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.core import events
from gateway.core.models import Firm, GATEWAY_LOCAL_PART, OutboundMessage, PaymentRequest, RequestKind, RequestStatus
from gateway.core.money import format_display

if TYPE_CHECKING:
    from gateway.outbound.outbox import Claimed

NOTICE_KIND = "bounce-notice"


@dataclass(frozen=True)
class BounceNotice:
    """What to tell the staff member (outbox.enqueue_notice's fields)."""

    firm: Firm
    request: PaymentRequest
    to: str
    subject: str
    paragraphs: list[str]


def request_key(request: PaymentRequest) -> str:
    """How a command names the request: its invoice, else its reference."""
    return request.invoice if request.invoice and " " not in request.invoice else f"R{request.id}"


async def mark_bounced(item: OutboundMessage | Claimed, reason: str, now: datetime, *, actor: str = "system") \
        -> BounceNotice | None:
    """Mark the request of ``item`` (a mail that failed for good: its row,
    or as the outbox claimed it) bounced;
    the notice to queue, or None when the failure changes nothing. Call in
    the transaction that records the failure."""
    if item.request_id is None:
        return None
    request = await PaymentRequest.get_or_none(id=item.request_id).prefetch_related("firm")
    if request is None or item.rcpt_to.lower() != request.client_email.lower():
        return None
    if not await PaymentRequest.filter(id=request.id, status=RequestStatus.SENT).update(status=RequestStatus.BOUNCED):
        return None
    request.status = RequestStatus.BOUNCED
    firm: Firm = request.firm
    await events.record(now, actor, "request.bounced", firm=firm, request=request, address=item.rcpt_to,
                        reason=reason[:300], outbound_id=item.id)
    key = request_key(request)
    what = f"invoice {request.invoice}" if request.invoice else f"R{request.id}"
    if request.kind is RequestKind.MESSAGE:
        title = f" \"{request.title[:60]}\"" if request.title else ""
        sent = f"The secure message{title} (R{request.id}{', invoice ' + request.invoice if request.invoice else ''})"
    else:
        amount = format_display(request.amount_minor, request.currency)
        sent = f"The secure payment request for {what} (R{request.id}, {amount})" if request.invoice else \
            f"The secure payment request R{request.id} ({amount})"
    paragraphs = [f"{sent} did not reach {item.rcpt_to}: the client has not received it."]
    if reason:
        paragraphs.append(f"The receiving mail server said: {reason}")
    paragraphs += [
        f"If the address is wrong, send {GATEWAY_LOCAL_PART}@{firm.domain} a message with the right one "
        "in the subject, like this:",
        f"    resend {key} to=corrected@address",
        "The request keeps its password, hint and link; the client gets it at the new address. "
        f"To withdraw it instead: cancel {key}",
    ]
    return BounceNotice(firm, request, request.sender, f"Not delivered: {what} to {item.rcpt_to}", paragraphs)
