"""The inbound queue: durable before 250, claimed with a lease, never lost.

A message is committed (sealed under the master key) before the SMTP
client hears 250. A runner claims it with a lease and an attempt count;
if the process dies mid-way the lease runs out and the message is claimed
again. A message that has been claimed MAX_ATTEMPTS times without finishing
is quarantined: kept, sealed, for an operator to look at.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.models import InboundMessage, InboundStatus

MAX_ATTEMPTS = 3


def new_queue_id() -> str:
    return secrets.token_hex(8).upper()


def raw_aad(queue_id: str) -> bytes:
    return b"inbound:" + queue_id.encode()


class GroupCommit:
    """Messages that arrive together are committed together: one writer
    inserts everything waiting in one transaction, and each sender hears
    back only once its row is committed. Messages that arrive while a
    commit is in flight wait for it and go in the next one, so a busy
    server commits in batches without a timer adding latency (``linger``
    makes the writer wait longer for company). One commit then serves
    several 250s, and the per-row cost of the ORM and the SQLite thread is
    paid once a batch."""

    def __init__(self, linger: float = 0.0, max_batch: int = 64) -> None:
        self.linger = linger
        self.max_batch = max_batch
        self._pending: list[tuple[InboundMessage, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def insert(self, row: InboundMessage) -> None:
        done = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        while self._pending:
            await asyncio.sleep(self.linger)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            try:
                async with in_transaction():
                    await InboundMessage.bulk_create([row for row, _ in batch])
            except Exception as exc:  # every waiter hears it, and answers 451
                for _, done in batch:
                    done.set_exception(exc)
            else:
                for _, done in batch:
                    done.set_result(None)


async def enqueue(
    raw: bytes,
    *,
    commit: GroupCommit,
    master_key: bytes,
    mail_from: str,
    sender: str,
    firm_domain: str,
    rcpt_tos: list[str],
    peer: str,
    trusted_peer: bool,
    now: datetime,
) -> str:
    queue_id = new_queue_id()
    sealed = vault.seal_with_master(master_key, raw, raw_aad(queue_id))
    await commit.insert(InboundMessage(
        id=queue_id,
        mail_from=mail_from,
        sender=sender,
        firm_domain=firm_domain,
        rcpt_tos=rcpt_tos,
        peer=peer,
        trusted_peer=trusted_peer,
        size=len(raw),
        sealed_raw=sealed,
        received_at=now,
    ))
    return queue_id


def open_raw(message: InboundMessage, master_key: bytes) -> bytes:
    return vault.open_with_master(master_key, message.sealed_raw, raw_aad(message.id))


async def claim(now: datetime, lease: timedelta) -> InboundMessage | None:
    """Take the oldest message that is queued or whose lease ran out."""
    # A queued message may carry a retry time; a processing one, a lease.
    claimable = Q(status__in=[InboundStatus.QUEUED, InboundStatus.PROCESSING]) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    while True:
        candidate = await InboundMessage.filter(claimable).order_by("received_at").only("id").first()
        if candidate is None:
            return None
        # The conditional update is the claim: if another runner won, try the next.
        won = await InboundMessage.filter(claimable, id=candidate.id).update(
            status=InboundStatus.PROCESSING, attempts=F("attempts") + 1, lease_until=now + lease
        )
        if won:
            return await InboundMessage.get(id=candidate.id)


async def finish(message: InboundMessage, outcome: str, now: datetime) -> None:
    """Mark done and drop the raw message: it has been turned into records."""
    await InboundMessage.filter(id=message.id).update(
        status=InboundStatus.DONE, outcome=outcome[:200], sealed_raw=None, finished_at=now, lease_until=None
    )


async def quarantine(message: InboundMessage, error: str, now: datetime) -> None:
    await InboundMessage.filter(id=message.id).update(
        status=InboundStatus.QUARANTINED, last_error=error[-4000:], finished_at=now, lease_until=None
    )


async def release(message: InboundMessage, error: str, retry_at: datetime) -> None:
    """Give a failed attempt back to the queue, to be claimed after retry_at."""
    await InboundMessage.filter(id=message.id).update(
        status=InboundStatus.QUEUED, last_error=error[-4000:], lease_until=retry_at
    )
