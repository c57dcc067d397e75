"""Periodic upkeep: requests past their expiry become `expired`, so that
reports and `status` say so; the admission counts of minutes the hourly
limits no longer look at are deleted, and so are the digests of unverified
webhook deliveries after a week, the accepted Message-IDs no fresh
message can carry any more (admission/replays.py), and dashboard sign-in
links a day past their time and staff sessions idle too long; the
documents of requests past their firm's retention period are deleted, a
small batch at a time (gateway/documents/retention.py), and so are large
messages' bodies the runner did not get to delete once they were done,
and sealed objects no row names, a day after a crash left them
(gateway/documents/orphans.py);
and the firms' reminder schedules run (gateway/reminders/chase.py). (The
pages already refuse expired requests by date; client sessions are purged
by web/sessions.py as new ones start.)"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from gateway.admission import replays, sql
from gateway.blobs import BlobStore
from gateway.core import events
from gateway.core.clock import Clock
from gateway.core.models import AdmissionCount, PaymentRequest, RequestStatus
from gateway.documents import orphans, retention
from gateway.inbound import queue as inbound
from gateway.payments import webhooks
from gateway.reminders.chase import Chaser
from gateway.vault import signin

log = logging.getLogger("clienttrack.housekeeping")

EXPIRABLE = (RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED, RequestStatus.BOUNCED)
# Retention deletes this many requests' documents a batch, and stops for
# the minute after this many batches: the store and the database are never
# held long, and a backlog still clears within hours.
RETENTION_BATCH = 20
RETENTION_BATCHES = 50
# What a crash left half-written in the store is looked for at start and
# then hourly (it lists every folder of DATA_DIR/blobs/).
TIDY_EVERY = 60
# Objects no row names (documents/orphans.py) are looked for at start and
# then daily: they are swept only once a day old, and the sweep lists the
# whole store.
ORPHANS_EVERY = 24 * 60


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


async def remove_documents_due(blobs: BlobStore, clock: Clock, stopping: asyncio.Event) -> int:
    removed = 0
    for _ in range(RETENTION_BATCHES):
        done = await retention.remove_due(blobs, clock(), RETENTION_BATCH)
        removed += done
        if done < RETENTION_BATCH or stopping.is_set():
            break
    return removed


async def run(clock: Clock, stopping: asyncio.Event, blobs: BlobStore, message_max_age: timedelta, chaser: Chaser,
              every_seconds: float = 60.0) -> None:
    rounds = 0
    while not stopping.is_set():
        try:
            expired = await expire_requests(clock())
            await chaser.run(clock())
            await forget_admission_counts(clock())
            await webhooks.forget_unverified(clock())
            await replays.forget(clock(), message_max_age)
            await signin.forget_old(clock())
            if expired:
                log.info("%d requests expired", expired)
            await remove_documents_due(blobs, clock, stopping)
            await inbound.forget_done_bodies(blobs)
            if rounds % TIDY_EVERY == 0:
                await blobs.tidy()
            if rounds % ORPHANS_EVERY == 0:
                await orphans.sweep(blobs)
            rounds += 1
        except Exception:
            log.exception("housekeeping failed; trying again in %.0fs", every_seconds)
        try:
            await asyncio.wait_for(stopping.wait(), every_seconds)
        except TimeoutError:
            pass
