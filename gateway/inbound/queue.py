"""The inbound queue: durable before 250, claimed with a lease, never lost.

A message is committed (sealed under the master key) before the SMTP
client hears 250. A runner claims it with a lease and an attempt count;
if the process dies mid-way the lease runs out and the message is claimed
again. A message that has been claimed MAX_ATTEMPTS times without finishing
is quarantined: kept, sealed, for an operator to look at.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import AsyncIterator, Callable, TypeVar

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.blobs import BlobStore
from gateway.core.db import stored_time
from gateway.core import readrows, rows, writeturns
from gateway.core.models import CLAIM_INDEX, InboundMessage, InboundRaw, InboundStatus
from gateway.inbound import bodies
from gateway.inbound.bodies import BodyWriter

MAX_ATTEMPTS = 3

T = TypeVar("T")


def new_queue_id() -> str:
    return secrets.token_hex(8).upper()


def raw_aad(queue_id: str) -> bytes:
    return b"inbound:" + queue_id.encode()


@dataclass(frozen=True)
class Arrival:
    """A message as admission hands it to the queue (gateway/admission/intake.py):
    sealed, with who sent it to which firm."""

    queue_id: str
    mail_from: str
    sender: str
    firm_domain: str
    rcpt_tos: list[str]
    peer: str
    trusted_peer: bool
    size: int
    sealed_raw: bytes
    received_at: datetime
    # The digest of a signed message's Message-ID (admission/replays.py),
    # accepted once per firm; "" when not checked (--demo's loopback trust).
    message_key: str = ""
    # A large message: its body in the blob store (inbound/bodies.py), and
    # sealed_raw only its header section.
    body_blob: str = ""
    body_salt: bytes | None = None

    def fields(self) -> dict:
        """As InboundMessage's fields."""
        return {"id": self.queue_id, "mail_from": self.mail_from, "sender": self.sender,
                "firm_domain": self.firm_domain, "rcpt_tos": self.rcpt_tos, "peer": self.peer,
                "trusted_peer": self.trusted_peer, "size": self.size, "body_blob": self.body_blob,
                "body_salt": self.body_salt, "received_at": self.received_at}

    def raw(self) -> InboundRaw:
        """The sealed message's row, stored with the queue row (InboundRaw)."""
        return InboundRaw(id=self.queue_id, sealed_raw=self.sealed_raw)


def arrival(
    raw: bytes,
    *,
    master_key: bytes,
    mail_from: str,
    sender: str,
    firm_domain: str,
    rcpt_tos: list[str],
    peer: str,
    trusted_peer: bool,
    now: datetime,
    message_key: str = "",
    body: BodyWriter | None = None,
) -> Arrival:
    """The message sealed under the master key, with a new queue id; with
    ``body`` (already stored), ``raw`` is the header section and the queue
    id is the body's."""
    queue_id = body.queue_id if body is not None else new_queue_id()
    return Arrival(queue_id, mail_from, sender, firm_domain, list(rcpt_tos), peer, trusted_peer,
                   len(raw) + (body.size if body is not None else 0),
                   vault.seal_with_master(master_key, raw, raw_aad(queue_id)), now, message_key,
                   body.name if body is not None else "", body.salt if body is not None else None)


def open_raw(message: InboundMessage, master_key: bytes) -> bytes:
    """The message as received, or a large one's header section (see
    open_body), as claim() read it."""
    return vault.open_with_master(master_key, message.sealed_raw, raw_aad(message.id))


def open_body(message: InboundMessage, master_key: bytes, store: BlobStore, header_size: int) -> AsyncIterator[bytes]:
    """A large message's body, a chunk at a time (its header section is
    open_raw's and ``header_size`` long)."""
    return bodies.read(store, master_key, message.id, message.body_salt, message.size - header_size)


class LeaseLost(RuntimeError):
    """The lease ran out and another runner has the message now: what this
    runner was doing with it must not be committed."""


def _claimable(now: datetime) -> Q:
    # A queued message may carry a retry time; a processing one, a lease.
    return Q(status__in=[InboundStatus.QUEUED, InboundStatus.PROCESSING]) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )


async def claim(now: datetime, lease: timedelta, owner: str) -> InboundMessage | None:
    """Take the oldest message that is queued or whose lease ran out, for
    ``owner`` until now + lease (renewed while the owner lives); with its
    sealed message (sealed_raw)."""
    claimed = await claim_and_read(now, lease, owner, None)
    return claimed[0] if claimed is not None else None


async def claim_and_read(now: datetime, lease: timedelta, owner: str,
                         read: Callable[[sqlite3.Connection, InboundMessage], T] | None,
                         ) -> tuple[InboundMessage, T | None] | None:
    """claim(), and on SQLite ``read(connection, message)`` right after it
    on the database's thread, in the claim's hand-off: work on the message
    done where the message already is, not a trip back through the event
    loop and out again (each trip is a wake-up of the loop and two thread
    switches). ``read`` runs after the claim's commit and must not raise:
    what it returns comes back beside the message. Elsewhere (PostgreSQL)
    only the claim, and None for ``read``'s part."""
    client = rows.sqlite_client()
    if client is None:
        message = await _claim_by_orm(now, lease, owner)
        return (message, None) if message is not None else None
    # SQLite has one writer at a time: one statement picks the oldest and
    # claims it, returning the row; the sealed message is read beside it,
    # both in one hand-off to the database's thread.
    return await rows.on_sqlite_thread(client, _claimed_on_sqlite, [
        InboundStatus.PROCESSING.value, stored_time(now + lease), owner, *pick_values(now)], read)


async def _claim_by_orm(now: datetime, lease: timedelta, owner: str) -> InboundMessage | None:
    claimed = {"status": InboundStatus.PROCESSING, "attempts": F("attempts") + 1, "lease_until": now + lease,
               "lease_owner": owner}
    # Runners skip the rows others are claiming instead of queueing behind them.
    async with in_transaction() as connection:
        candidate = await InboundMessage.filter(_claimable(now)).order_by("received_at").limit(1).only(
            "id").select_for_update(skip_locked=True).using_db(connection).first()
        if candidate is None:
            return None
        await InboundMessage.filter(id=candidate.id).using_db(connection).update(**claimed)
    message = await InboundMessage.get(id=candidate.id)
    message.sealed_raw = (await InboundRaw.get(id=candidate.id)).sealed_raw
    return message


def _claimed_on_sqlite(connection: sqlite3.Connection, values: list,
                       read: Callable[[sqlite3.Connection, InboundMessage], T] | None,
                       ) -> tuple[InboundMessage, T | None] | None:
    message = _claim_on_sqlite(connection, values)
    if message is None:
        return None
    return message, read(connection, message) if read is not None else None


def _claim_on_sqlite(connection: sqlite3.Connection, values: list) -> InboundMessage | None:
    # Autocommit: the claim commits by itself, not flushed by itself (a
    # claim lost to a power cut named a runner the power cut stopped too:
    # the message is claimed again, as when a lease runs out, with one
    # attempt fewer counted). Its fsync held every statement of this
    # process behind it. In this process's turn at the write lock
    # (writeturns.py), not SQLite's busy handler. The sealed copy is read after.
    read_message = readrows.reader(InboundMessage)
    with writeturns.taken(connection), rows.unflushed(connection):
        found = connection.execute(
            "UPDATE inbound_message SET status = ?, attempts = attempts + 1, lease_until = ?, lease_owner = ?"
            f" WHERE id = ({PICK_ON_SQLITE}) RETURNING {read_message.projection}", values).fetchall()
    if not found:
        return None
    # Made by readrows, not the ORM's per-field parsing (its three times read by a regular expression).
    message = read_message.made(found[0])
    (message.sealed_raw,) = connection.execute(READ_RAW, [message.id]).fetchone()
    return message


READ_RAW = "SELECT sealed_raw FROM inbound_raw WHERE id = ?"


# The oldest claimable message, read off the claim's index alone, never
# the queued rows (see InboundMessage.Meta). Named, so that no statistics
# SQLite may gather turn the planner to the status index or a scan.
PICK_ON_SQLITE = (f"SELECT id FROM inbound_message INDEXED BY {CLAIM_INDEX} WHERE status IN (?, ?)"
                  " AND (lease_until IS NULL OR lease_until < ?) ORDER BY received_at LIMIT 1")


def pick_values(now: datetime) -> list:
    return [InboundStatus.QUEUED.value, InboundStatus.PROCESSING.value, stored_time(now)]


async def hand_back(ids: list[str], owner: str) -> int:
    """Give back messages ``owner`` still holds, their attempt not counted
    (a database or disk error stopped it, nothing about the message)."""
    return await InboundMessage.filter(id__in=ids, lease_owner=owner, status=InboundStatus.PROCESSING).update(
        status=InboundStatus.QUEUED, attempts=F("attempts") - 1, lease_until=None, lease_owner="")


async def forget_body(message: InboundMessage, store: BlobStore) -> None:
    """A done message's body leaves the store (its records were made from
    it); the row stops naming it only once it is gone, so a deletion that
    fails is done again by housekeeping (forget_done_bodies)."""
    await bodies.delete(store, message.id)
    await InboundMessage.filter(id=message.id, status=InboundStatus.DONE).update(body_blob="")


async def forget_done_bodies(store: BlobStore, limit: int = 100) -> int:
    """The bodies of done messages still in the store (their deletion
    failed, or the process stopped before it); how many went."""
    done = await InboundMessage.filter(status=InboundStatus.DONE).exclude(body_blob="").limit(limit)
    for message in done:
        await forget_body(message, store)
    return len(done)


def _held(message: InboundMessage):
    """The message, only while this runner still holds it."""
    return InboundMessage.filter(id=message.id, status=InboundStatus.PROCESSING, lease_owner=message.lease_owner)


async def finish(message: InboundMessage, outcome: str, now: datetime) -> None:
    """Mark done and drop the raw message: it has been turned into records.
    Called in the handler's transaction: LeaseLost undoes all of it."""
    async with in_transaction():
        done = await _held(message).update(
            status=InboundStatus.DONE, outcome=outcome[:200], finished_at=now, lease_until=None, lease_owner="")
        if not done:
            raise lease_lost(message)
        await InboundRaw.filter(id=message.id).delete()


# finish() as statements of our own (handlers/request.py writes a request's
# rows together, gateway/core/rows.py): FINISH's row count says whether
# this runner still held the message; then FORGET_RAW (the message's id).
FINISH = ("UPDATE inbound_message SET status = ?, outcome = ?, finished_at = ?,"
          " lease_until = NULL, lease_owner = '' WHERE id = ? AND status = ? AND lease_owner = ?")
FORGET_RAW = "DELETE FROM inbound_raw WHERE id = ?"


def forget_raw_on_sqlite(connection: sqlite3.Connection, queue_id: str) -> None:
    """FORGET_RAW on SQLite's own connection, the copy's pages freed without
    being zeroed first (rows.freed_unzeroed): they hold only what was sealed
    under the master key, and zeroing them wrote all ~35 of a 140 KB
    message's pages to the WAL once more."""
    with rows.freed_unzeroed(connection):
        connection.execute(FORGET_RAW, [queue_id])


def finish_values(message: InboundMessage, outcome: str, now: datetime) -> list:
    """FINISH's parameters, as finish() writes them."""
    finished_at = InboundMessage._meta.fields_map["finished_at"].to_db_value(now, None)
    return [InboundStatus.DONE.value, outcome[:200], finished_at, message.id, InboundStatus.PROCESSING.value,
            message.lease_owner]


def lease_lost(message: InboundMessage) -> LeaseLost:
    return LeaseLost(f"queue {message.id}: the lease ran out and another runner took it")


async def quarantine(message: InboundMessage, error: str, now: datetime) -> None:
    await _held(message).update(
        status=InboundStatus.QUARANTINED, last_error=error[-4000:], finished_at=now, lease_until=None, lease_owner="")


async def release(message: InboundMessage, error: str, retry_at: datetime) -> None:
    """Give a failed attempt back to the queue, to be claimed after retry_at."""
    await _held(message).update(
        status=InboundStatus.QUEUED, last_error=error[-4000:], lease_until=retry_at, lease_owner="")
