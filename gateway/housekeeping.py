"""Periodic upkeep: requests past their expiry become `expired`, so that
reports and `status` say so; the admission counts of minutes the hourly
limits no longer look at are deleted, and so are the digests of unverified
webhook deliveries after a week. (The pages already refuse expired
requests by date; client sessions are purged by web/sessions.py as new
ones start.)"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from gateway.admission import sql
from gateway.core import events
from gateway.core.clock import Clock
from gateway.core.models import AdmissionCount, PaymentRequest, RequestStatus
from gateway.payments import webhooks

log = logging.getLogger("clienttrack.housekeeping")

EXPIRABLE = (RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED)


async def expire_requests(now: datetime) -> int:
    expired = 0
    for request in await PaymentRequest.filter(status__in=EXPIRABLE, expires_at__lte=now):
        # Conditional: a payment landing at the same moment wins.
        if await PaymentRequest.filter(id=request.id, status__in=EXPIRABLE).update(status=RequestStatus.EXPIRED):
            await events.record(now, "system", "request.expired", request=request)
            expired += 1
    return expired


async def forget_admission_counts(now: datetime) -> int:
    return await AdmissionCount.filter(minute__lte=sql.minute_of(now) - sql.WINDOW_MINUTES).delete()


async def run(clock: Clock, stopping: asyncio.Event, every_seconds: float = 60.0) -> None:
    while not stopping.is_set():
        try:
            expired = await expire_requests(clock())
            await forget_admission_counts(clock())
            await webhooks.forget_unverified(clock())
            if expired:
                log.info("%d requests expired", expired)
        except Exception:
            log.exception("housekeeping failed; trying again in %.0fs", every_seconds)
        try:
            await asyncio.wait_for(stopping.wait(), every_seconds)
        except TimeoutError:
            pass
