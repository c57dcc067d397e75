"""Retention: a request's documents (the message body, the attachments and,
later, the client's replies) are deleted for good a firm's number of days
after the request ended: paid (also when later refunded), cancelled, or
expired. The request's record, its ledger and its events stay: reports and
accounting need them, and the client's page can then say what happened.
A disputed payment keeps its documents while the dispute is open.

Housekeeping calls `remove_due` in small batches. Each request is done in
three steps, so a crash anywhere leaves it to be finished by the next run:
delete its objects from the store (idempotent), then in one transaction
delete its file rows, mark it `documents_removed_at` and record the event.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from gateway.blobs import BlobStore
from gateway.core import events
from gateway.core.models import Firm, PaymentRequest, RequestStatus, SealedFile
from gateway.documents.storing import name_for

log = logging.getLogger("clienttrack.retention")

DEFAULT_DAYS = 90
MAX_DAYS = 3650
PAID = (RequestStatus.PAID, RequestStatus.REFUNDED, RequestStatus.PARTIALLY_REFUNDED)
_DAYS = re.compile(r"(\d{1,5})d?")


class RetentionError(ValueError):
    """A retention period that is not N days (0 to 3650)."""


def parse_days(text: str) -> int:
    """'90d' or '90' -> 90."""
    found = _DAYS.fullmatch(text.strip().lower())
    if not found or int(found.group(1)) > MAX_DAYS:
        raise RetentionError(f"expected a number of days like 90d (0d to {MAX_DAYS}d), got {text!r}")
    return int(found.group(1))


def ended(days: int, now: datetime) -> Q:
    """Requests that ended `days` or more days before `now`. A request
    cancelled before the cancel time was kept counts from its expiry
    (later, never sooner)."""
    cutoff = now - timedelta(days=days)
    return (
        Q(status__in=PAID, paid_at__lte=cutoff)
        | Q(status=RequestStatus.CANCELLED, cancelled_at__lte=cutoff)
        | Q(status=RequestStatus.CANCELLED, cancelled_at__isnull=True, expires_at__lte=cutoff)
        | Q(status=RequestStatus.EXPIRED, expires_at__lte=cutoff)
    )


async def due(now: datetime, limit: int) -> list[PaymentRequest]:
    """Up to `limit` requests whose documents are due for deletion. One
    query per distinct retention period among the firms (a handful)."""
    found: list[PaymentRequest] = []
    for days in sorted(set(await Firm.all().distinct().values_list("retention_days", flat=True))):
        if len(found) >= limit:
            break
        found += await PaymentRequest.filter(ended(days, now), firm__retention_days=days,
                                             documents_removed_at__isnull=True) \
            .order_by("id").limit(limit - len(found)).prefetch_related("firm")
    return found


@dataclass(frozen=True)
class Removed:
    files: int
    bytes: int


async def remove_documents(store: BlobStore, request: PaymentRequest, now: datetime, *,
                           actor: str = "system", reason: str = "retention") -> Removed:
    """Delete the request's documents for good and say so in its record."""
    files = await SealedFile.filter(request_id=request.id)
    for file in files:
        # A file still in rows may have a copy from an interrupted migrate.
        await store.delete(file.blob or name_for(file.file_salt))
    async with in_transaction():
        await SealedFile.filter(id__in=[f.id for f in files]).delete()
        marked = await PaymentRequest.filter(id=request.id, documents_removed_at__isnull=True) \
            .update(documents_removed_at=now)
        removed = Removed(len(files), sum(f.size for f in files))
        if marked:
            request.documents_removed_at = now
            await events.record(now, actor, "request.documents_removed", firm=request.firm, request=request,
                                files=removed.files, bytes=removed.bytes, reason=reason,
                                retention_days=request.firm.retention_days)
    return removed


async def remove_due(store: BlobStore, now: datetime, batch: int = 20) -> int:
    """One small batch: the documents of up to `batch` requests; how many."""
    requests = await due(now, batch)
    for request in requests:
        await remove_documents(store, request, now)
    if requests:
        log.info("documents of %d ended requests removed (retention)", len(requests))
    return len(requests)


async def set_days(firm: Firm, days: int, now: datetime, actor: str) -> None:
    if days != firm.retention_days:
        before, firm.retention_days = firm.retention_days, days
        await firm.save(update_fields=["retention_days"])
        await events.record(now, actor, "firm.retention", firm=firm, documents_days=days, before=before)
