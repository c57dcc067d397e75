"""A request's replies, opened with its data key: for the page the staff
member's notice links to (web/staff_replies.py), and for the dashboard's
request page, which can call opened() once it has the data key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway import vault
from gateway.blobs import BlobStore
from gateway.core.models import ClientReply, PaymentRequest, SealedFile
from gateway.vault import sealed


@dataclass(frozen=True)
class ReplyFile:
    position: int
    filename: str
    size: int
    # The checklist line it answers ("" for none).
    document: str


@dataclass(frozen=True)
class OpenedReply:
    number: int
    at: datetime
    text: str
    files: tuple[ReplyFile, ...]


async def by_token(token: str) -> ClientReply | None:
    """The reply a staff member's link names, with its request and firm."""
    return await ClientReply.get_or_none(token_hash=vault.token_hash(token)).prefetch_related("request__firm")


async def opened(request: PaymentRequest, data_key: bytes, store: BlobStore) -> list[OpenedReply]:
    """Every reply of the request, oldest first, its text read with the data
    key; raises vault.TamperedError if a sealed text does not authenticate."""
    labels = list(request.upload_items or ())
    replies = await ClientReply.filter(request_id=request.id).order_by("number")
    files = await SealedFile.filter(request_id=request.id, reply_id__isnull=False).order_by("position")
    out = []
    for reply in replies:
        mine = [f for f in files if f.reply_id == reply.id]
        body = next((f for f in mine if f.is_body), None)
        text = (await sealed.read_all(body, data_key, store)).decode("utf-8", "replace") if body else ""
        out.append(OpenedReply(reply.number, reply.created_at, text, tuple(
            ReplyFile(f.position, f.filename, f.size,
                      labels[f.upload_item] if f.upload_item is not None and f.upload_item < len(labels) else "")
            for f in mine if not f.is_body)))
    return out
