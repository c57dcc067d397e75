"""Keeping a client's reply: its text and files (already sealed under the
request's data key) become SealedFile rows of the request, tied to a
ClientReply, in one transaction with the reply's event and the notice to
the staff member. The notice says only that a reply came, with a link to
the page that opens it with the request's password."""

from __future__ import annotations

from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.core import events
from gateway.core.models import ClientReply, PaymentRequest, SealedFile, Staff
from gateway.deps import Deps
from gateway.documents import storing
from gateway.documents.storing import SealedItem
from gateway.outbound import outbox

REPLY_FILENAME = "reply.txt"
# Two replies saved at the same moment may pick the same number: try again.
_TRIES = 3


def link(deps: Deps, token: str) -> str:
    """The staff member's link to a reply (web/staff_replies.py)."""
    return f"{deps.settings.public_base_url}/staff/replies/{token}"


async def save(deps: Deps, request: PaymentRequest, *, text: SealedItem, files: list[SealedItem],
               now: datetime) -> ClientReply:
    """Keep the reply; ``text`` is the sealed text (possibly empty), ``files``
    the sealed files (each with the checklist line it answers, if any).
    As for the staff's files (handlers/request.py), the objects go to the
    blob store before the transaction, so that none waits on an upload."""
    stored = await storing.put_items(deps.blobs, [text, *files])
    for attempt in range(_TRIES):
        token = vault.new_token()
        try:
            async with in_transaction():
                reply = await _keep(deps, request, token, stored, now)
            break
        except IntegrityError:
            if attempt == _TRIES - 1:
                await storing.discard(deps.blobs, stored)
                raise
    deps.outbox_wake.set()
    return reply


async def _keep(deps: Deps, request: PaymentRequest, token: str, stored: list[storing.Stored],
                now: datetime) -> ClientReply:
    files = [s.item for s in stored[1:]]
    last = await ClientReply.filter(request_id=request.id).order_by("-number").first()
    number = last.number + 1 if last else 1
    highest = await SealedFile.filter(request_id=request.id).order_by("-position").first()
    reply = await ClientReply.create(request=request, number=number, created_at=now, file_count=len(files),
                                     token_hash=vault.token_hash(token))
    await storing.record(request, stored, first_position=(highest.position + 1) if highest else 0, reply=reply)
    labels = list(request.upload_items or ())
    answered = sorted({labels[f.upload_item] for f in files if f.upload_item is not None})
    await events.record(now, request.client_email, "request.replied", firm=request.firm, request=request,
                        reply=number, files=len(files), documents=answered)
    staff = await Staff.get_or_none(id=request.staff_id) if request.staff_id else None
    what = f"invoice {request.invoice}" if request.invoice else (request.title or f"R{request.id}")
    await outbox.enqueue_notice(
        deps.composer, master_key=deps.master_key, kind="reply-notice", now=now,
        firm_domain=request.firm.domain, firm_name=request.firm.name,
        to=staff.email if staff else request.sender, request=request,
        subject=f"Secure reply from {request.client_email} (R{request.id}, {what})",
        paragraphs=[
            f"{request.client_email} sent you a secure reply to R{request.id} ({what}).",
            "It is sealed like the request itself: open it with the password you chose for this request.",
            "    " + link(deps, token),
        ],
    )
    return reply
