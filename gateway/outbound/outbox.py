"""The outbound queue: mail is committed with the change that caused it,
then delivered by the outbox runner to the relay or the Maildir.

Messages are stored sealed under the master key (a confirmation may carry
a generated password) and the body is dropped once delivered. Each is
DKIM-signed as it leaves (outbound/signing.py) and goes with an envelope
sender of its own (vault/verp.py), so a bounce names it; nothing is ever
queued for a bounce address (mail there comes back to us). Temporary
failures are retried with exponential backoff; a permanent failure, or
running out of attempts, tells the staff member who caused the mail (a
client's address refused makes the request bounced: outbound/bounced.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Iterable

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.core import metrics, rows, sqlite_threads, writeturns
from gateway.core.clock import Clock
from gateway.core.db import stored_time
from gateway.core.durable import flush_file
from gateway.core.health import Health, keep_running, outage
from gateway.core.inflight import InFlight
from gateway.core.sqlite_threads import SqliteThread
from gateway.core.models import OUTBOUND_CLAIM_INDEX, OutboundMessage, OutboundStatus, PaymentRequest
from gateway.outbound.bounced import NOTICE_KIND, BounceNotice, mark_bounced
from gateway.outbound.compose import Composed, Composer, to_bytes
from gateway.outbound.dkimkeys import DkimKeyError
from gateway.outbound.maildir import MaildirTransport
from gateway.outbound.relay import RelayTransport
from gateway.outbound.signing import Signer, SigningError
from gateway.outbound.transport import DeliveryFailure, PermanentFailure, TemporaryFailure, Transport, retry_delay
from gateway.vault import verp

log = logging.getLogger("clienttrack.outbox")

FAILURE_NOTICE = "delivery-failure"
BATCH = 20  # messages a runner claims at once
# How long mail that is due may wait for the mail of this process's work in
# flight (gateway/core/inflight.py), to go out in one batch with it: under
# load a process finishes a request every 50-100 ms, and a batch costs about
# 1.2 ms of CPU whatever it holds. Nothing a reader of the mail notices; a
# lone request's mail does not wait at all.
GATHER_MOST = 0.25


# A delivered message, as deliver() marks it (only while this runner holds it).
SENT = ("UPDATE outbound_message SET status = ?, attempts = ?, sent_at = ?, sealed_message = NULL, last_error = ?,"
        " lease_until = NULL, lease_owner = '' WHERE id = ? AND lease_owner = ?")


def _aad(rcpt_to: str) -> bytes:
    return f"outbound:{rcpt_to}".encode()


async def enqueue(
    message: EmailMessage | Composed,
    *,
    master_key: bytes,
    kind: str,
    now: datetime,
    request: PaymentRequest | None = None,
    notify_on_failure: str = "",
) -> OutboundMessage:
    """Queue one message; call inside the transaction that caused it."""
    row = prepared(message, master_key=master_key, kind=kind, now=now,
                   request_id=request.id if request is not None else None, notify_on_failure=notify_on_failure).made()
    await row.save()
    return row


def prepared(
    message: EmailMessage | Composed,
    *,
    master_key: bytes,
    kind: str,
    now: datetime,
    request_id: int | None = None,
    notify_on_failure: str = "",
) -> rows.New:
    """The row enqueue() saves, as rows.New, for a caller that writes its
    rows itself (gateway/core/rows.py)."""
    return rows.New(OutboundMessage, {**_row(message, master_key, kind, now, notify_on_failure),
                                      "request_id": request_id})


def _row(message: EmailMessage | Composed, master_key: bytes, kind: str, now: datetime,
         notify_on_failure: str) -> dict:
    if isinstance(message, Composed):
        rcpt_to, mail_from, subject = message.rcpt_to, message.mail_from, message.subject
    else:
        rcpt_to = parseaddr(str(message["To"]))[1]
        mail_from = parseaddr(str(message["From"]))[1]
        subject = str(message["Subject"] or "")
    if verp.shaped_like(rcpt_to):
        raise ValueError(f"refusing to send to a bounce address ({rcpt_to}): it would come back to us")
    return dict(
        kind=kind,
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        subject=subject[:998],
        sealed_message=vault.seal_with_master(master_key, to_bytes(message), _aad(rcpt_to)),
        notify_on_failure=notify_on_failure,
        next_attempt_at=now,
        created_at=now,
    )


async def enqueue_notice(
    composer: Composer,
    *,
    master_key: bytes,
    kind: str,
    now: datetime,
    firm_domain: str,
    to: str,
    subject: str,
    paragraphs: list[str],
    firm_name: str = "",
    in_reply_to: str = "",
    request: PaymentRequest | None = None,
    attachments: Iterable[tuple[str, str, bytes]] = (),
) -> None:
    """Compose a notice from the gateway (Composer.notice) with its
    attachments (file name, content type, bytes) and queue it; call inside
    the transaction that caused it."""
    message = composer.notice(firm_domain=firm_domain, firm_name=firm_name, to=to, subject=subject,
                              paragraphs=paragraphs, in_reply_to=in_reply_to, now=now)
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    await enqueue(message, master_key=master_key, kind=kind, now=now, request=request)


@dataclass(slots=True)
class Claimed:
    """A message a runner claimed: the columns delivering it reads."""

    id: int
    kind: str
    mail_from: str
    rcpt_to: str
    subject: str
    sealed_message: bytes
    notify_on_failure: str
    request_id: int | None
    attempts: int
    lease_owner: str

    @classmethod
    def of(cls, row: OutboundMessage) -> "Claimed":
        return cls(*(getattr(row, name) for name in cls.__slots__))


# SQLite has one writer at a time: one statement picks the batch and claims
# it. The pick reads the claim's index alone (models.OutboundMessage.Meta).
PICK_ON_SQLITE = (f"SELECT id FROM outbound_message INDEXED BY {OUTBOUND_CLAIM_INDEX} WHERE status = ?"
                  " AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)"
                  " ORDER BY next_attempt_at, id LIMIT ?")
CLAIM_ON_SQLITE = (f"UPDATE outbound_message SET lease_until = ?, lease_owner = ? WHERE id IN ({PICK_ON_SQLITE})"
                   " RETURNING next_attempt_at, " + ", ".join(Claimed.__slots__))


def pick_values(now: datetime, batch: int) -> list:
    return [OutboundStatus.QUEUED.value, stored_time(now), stored_time(now), batch]


async def claim_due(now: datetime, lease: timedelta, owner: str, batch: int) -> list[Claimed]:
    """Claim up to ``batch`` messages that are due and held by nobody (or
    whose lease ran out), for ``owner`` until now + lease; oldest due first."""
    client = rows.sqlite_client()
    if client is not None:
        # In this process's turn at the write lock (gateway/core/writeturns.py).
        return await rows.on_sqlite_thread(client, writeturns.in_turn, _claim_on_sqlite,
                                           [stored_time(now + lease), owner, *pick_values(now, batch)])
    due = Q(status=OutboundStatus.QUEUED, next_attempt_at__lte=now) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    order = ("next_attempt_at", "id")
    # Runners skip the rows others are claiming instead of queueing behind them.
    async with in_transaction() as connection:
        ids = [row.id for row in await OutboundMessage.filter(due).order_by(*order).limit(batch).only("id")
               .select_for_update(skip_locked=True).using_db(connection)]
        if ids:
            await OutboundMessage.filter(id__in=ids).using_db(connection).update(lease_until=now + lease,
                                                                                lease_owner=owner)
    return [Claimed.of(row) for row in await OutboundMessage.filter(id__in=ids).order_by(*order)] if ids else []


def _claim_on_sqlite(connection: sqlite3.Connection, values: list) -> list[Claimed]:
    """The claim, on the database's thread. Its commit is not flushed to
    disk by itself (synchronous NORMAL for this statement; the next FULL
    commit flushes it with its own): a claim lost to a power cut named a
    runner that the power cut stopped too, and the message is claimed
    again as if never claimed, as it would be when that runner's lease ran
    out. The rows are read as they are (times in the stored text, whose
    order is the times' order), not as the ORM's models.

    The lease makes each row longer, and SQLite writes a row whose size
    changes anew, its sealed message's overflow pages too: the old pages
    are freed unzeroed (rows.freed_unzeroed), as they hold only the sealed
    message's tail (under the master key) and the row's later columns (the
    lease, times, the address told of a failure: no secret, and kept in
    the new row). Zeroed, they were 4 more pages in the log a request (the
    bench's two mails), and as many in the next checkpoint."""
    with rows.unflushed(connection), rows.freed_unzeroed(connection):
        return _claimed(connection, values)


def _claimed(connection: sqlite3.Connection, values: list) -> list[Claimed]:
    claimed = connection.execute(CLAIM_ON_SQLITE, values).fetchall()
    claimed.sort(key=lambda row: row[:2])
    return [Claimed(*row[1:]) for row in claimed]


# The outbox's own connection on SQLite (OutboxRunner._batch_on_own_thread),
# as the ORM's but for two PRAGMAs, set once for all it runs: the claim and
# the Maildir batch's mark-sent, whose commits are not flushed by
# themselves and whose freed pages are not zeroed (_claim_on_sqlite and
# _deliver_to_maildir say why each is safe). Nothing else runs on it.
OWN_CONNECTION_PRAGMAS = {"synchronous": "NORMAL", "secure_delete": "FAST"}


def _sent(due: list[Claimed], outcomes: list[str | Exception]) -> list[tuple[Claimed, str]]:
    """The messages of a Maildir batch that were delivered, and their notes."""
    return [(item, note) for item, note in zip(due, outcomes) if isinstance(note, str)]


def _sent_rows(sent: list[tuple[Claimed, str]], sent_at: object) -> list[list]:
    """SENT's parameters for each message delivered (``sent_at`` as the database takes it)."""
    return [[OutboundStatus.SENT.value, item.attempts + 1, sent_at, note[:2000], item.id, item.lease_owner]
            for item, note in sent]


def flush_commits() -> None:
    """Every commit made so far on disk for good, before mail that tells of
    it leaves (a thread's work). On SQLite a request's commit is not
    flushed by itself (handlers/request.py), nor are the claims: the
    write-ahead log holds them in order, so one flush of it a batch of
    mail, here, off the database's thread and outside its write lock,
    does for all of them (at synchronous NORMAL SQLite leaves unflushed
    only the log's frames written since its last flush; a checkpoint
    flushes the log before it and the database after). Nothing to do on
    PostgreSQL (its commits are flushed) or for a database in memory."""
    client = sqlite_threads.file_client()
    if client is not None:
        flush_log(client.filename)


def flush_log(path: str) -> None:
    """flush_commits() for the SQLite file at ``path``."""
    flush_file(Path(f"{path}-wal"))


class OutboxRunner:
    def __init__(
        self,
        *,
        transport: Transport,
        composer: Composer,
        master_key: bytes,
        clock: Clock,
        wake: asyncio.Event,
        max_attempts: int,
        retry_base_seconds: float,
        owner: str,
        lease: timedelta,
        signer: Signer,
        mail_coming: InFlight | None = None,
    ) -> None:
        self.owner = owner
        self.mail_coming = mail_coming if mail_coming is not None else InFlight()
        # The last batch was full: more is due now, and waiting would only delay it.
        self.behind = False
        self.lease = lease
        self.transport = transport
        self.signer = signer
        self.verp = verp.Verp(master_key)
        self.composer = composer
        self.master_key = master_key
        self.clock = clock
        self.wake = wake
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        # Claimed rows a failure left leased to this process (the lease
        # keeper renews them while it lives): given back before anything
        # else once the database answers again.
        self.let_go: set[int] = set()
        # On SQLite, the thread and connection a Maildir batch runs on (_deliver_on_own_thread).
        self._own: SqliteThread | None = None

    async def run(self, stopping: asyncio.Event, health: Health, idle_seconds: float = 1.0) -> None:
        try:
            await keep_running("outbox", self._step, stopping=stopping, health=health,
                               idle_seconds=idle_seconds, wake=self.wake)
        finally:
            await self.close()

    async def close(self) -> None:
        """The outbox's own thread and connection end, if it made them (a
        later batch makes them again)."""
        if self._own is not None:
            own, self._own = self._own, None
            await own.close()

    async def _step(self) -> bool:
        """A batch delivered; True if it was full (more may be due now). A
        batch that was not full took all that was due: what is queued since
        sets ``wake``, so the runner does not ask again at once (that claim
        found nothing most times, a statement and a trip to the database's
        thread each batch).

        Unless it is behind, the runner first waits (GATHER_MOST at most)
        for this process's work in flight, whose mail then goes in the same
        batch. Nothing is lost by waiting: the mail is in its rows, claimed
        by whoever runs next if this process dies meanwhile. The wake-ups
        of the mail queued while it waited are taken by this claim (each
        was set after its commit, so its rows are there to claim), not by
        a claim of their own after it."""
        if not self.behind:
            await self.mail_coming.ended(GATHER_MOST)
            self.wake.clear()
        self.behind = await self.deliver_due(BATCH) == BATCH
        return self.behind

    async def deliver_due(self, batch: int = BATCH) -> int:
        """Claim what is due (a batch) and deliver it; how many it claimed."""
        if self.let_go:
            handing = sorted(self.let_go)
            await OutboundMessage.filter(id__in=handing, lease_owner=self.owner, status=OutboundStatus.QUEUED).update(
                lease_until=None, lease_owner="")
            self.let_go.difference_update(handing)
        if isinstance(self.transport, MaildirTransport):
            client = sqlite_threads.file_client()
            if client is not None:
                return await self._deliver_on_own_thread(client, batch)
        due = await claim_due(self.clock(), self.lease, self.owner, batch)
        if due and isinstance(self.transport, MaildirTransport):
            await self._deliver_to_maildir(due)
            return len(due)
        if due:
            await asyncio.to_thread(flush_commits)
        for index, item in enumerate(due):
            try:
                await self.deliver(item)
            except Exception as exc:
                # The rest of the batch goes back; this one too when the
                # database or the disk failed (not the mail).
                self.let_go.update(row.id for row in due[index if outage(exc) else index + 1:])
                raise
        return len(due)

    def _held(self, item: Claimed):
        """The row, only while this runner still holds it."""
        return OutboundMessage.filter(id=item.id, lease_owner=item.lease_owner)

    async def _deliver_on_own_thread(self, client, batch: int) -> int:
        """deliver_due() into the Maildir on SQLite: a batch claimed, signed,
        written and marked sent in one trip to the outbox's own thread, on
        its own connection (_batch_on_own_thread). Through the ORM that was
        three trips from the event loop and back, each a wake-up of the
        loop and two thread switches: the claim and the mark on the ORM's
        database thread (holding up the rest of the process's statements),
        the signing and writing in asyncio's pool between them."""
        if self._own is None:  # made at the first batch, ended by close()
            self._own = SqliteThread("outbox", **OWN_CONNECTION_PRAGMAS)
        due, outcomes = await self._own.run(client, self._batch_on_own_thread, client.filename, self.clock(), batch)
        await self._recorded(due, outcomes)
        return len(due)

    def _batch_on_own_thread(self, connection: sqlite3.Connection, path: str, now: datetime,
                             batch: int) -> tuple[list[Claimed], list[str | Exception] | Exception]:
        """What was claimed, and each one's outcome (_sign_and_write), or
        what failed once they were claimed (the rows then go back: _recorded).

        Each step as through the ORM, in the same order, so a crash or a
        power cut between any two loses nothing and at worst sends again:
        after the claim (unflushed) and before the files are in new/, the
        claim is lost or names a runner that is gone, and the rows are
        claimed again when its lease runs out (or at once by the next
        process on this machine, gateway/core/leases.py); after the files
        are in new/ (each fsync'd, then new/) and before the mark
        (unflushed) is on disk, they are claimed again the same way, and
        the Maildir finds each file by its delivery id and writes nothing
        twice. A message is marked sent only once its file is in new/ for
        good, and the log is flushed before any file is written (flush_log:
        the commits the mail tells of)."""
        # An idle poll finds nothing due on the claim's index alone, without
        # a turn at the write lock (where an intake's batch may be).
        if connection.execute(PICK_ON_SQLITE, pick_values(now, 1)).fetchone() is None:
            return [], []
        with writeturns.taken(connection):
            due = _claimed(connection, [stored_time(now + self.lease), self.owner, *pick_values(now, batch)])
        if not due:
            return due, []
        try:
            outcomes = self._sign_and_write(due, path)
            sent = _sent(due, outcomes)
            if sent:
                marks = _sent_rows(sent, stored_time(self.clock()))
                with writeturns.taken(connection):
                    rows.in_transaction(connection, lambda connection: connection.executemany(SENT, marks))
        except Exception as exc:
            return due, exc
        return due, outcomes

    async def _deliver_to_maildir(self, due: list[Claimed]) -> None:
        """deliver() for a batch, into the Maildir, through the ORM (on
        PostgreSQL, or SQLite in memory): signed and written on one
        thread, new/ fsync'd once for all of them, and those delivered
        marked sent in one transaction."""
        try:
            # No SQLite file here (_step sends those batches to the
            # outbox's own thread): no log of ours to flush first.
            outcomes: list[str | Exception] | Exception = await asyncio.to_thread(self._sign_and_write, due, None)
            sent = _sent(due, outcomes)
            if sent:
                sent_at = OutboundMessage._meta.fields_map["sent_at"].to_db_value(self.clock(), None)
                # The mark's commit is not flushed by itself (on SQLite; the
                # next FULL commit flushes it, in order): the files are in the
                # Maildir for good before it (each fsync'd, and new/), and a
                # mark lost to a power cut is a runner that stopped after
                # writing: the rows are claimed again when the lease runs out,
                # and the Maildir finds each file by its delivery id and writes
                # nothing twice. Its fsync held every statement of the process
                # behind it. (The relay's mark, deliver(), stays flushed: a
                # mark lost there would send the mail again.) The sealed
                # message's pages it frees are not zeroed (rows.freed_unzeroed:
                # ciphertext under the master key, and the row's later columns,
                # no secret; as the claim's, _claim_on_sqlite).
                await rows.execute_many(SENT, _sent_rows(sent, sent_at), flushed=False, zero_freed=False)
        except Exception as exc:
            outcomes = exc
        await self._recorded(due, outcomes)

    async def _recorded(self, due: list[Claimed], outcomes: list[str | Exception] | Exception) -> None:
        """A Maildir batch's outcomes told (those sent were marked so): the
        failures retried or given up (_failed). What failed outside the
        mail (the database, the disk: outage) gives the whole batch back."""
        try:
            if isinstance(outcomes, Exception):
                raise outcomes
            now = self.clock()
            for item, note in _sent(due, outcomes):
                metrics.DELIVERIES.labels("sent").inc()
                log.info("outbound %s %s to %s delivered: %s", item.id, item.kind, item.rcpt_to, note)
            for index, (item, outcome) in enumerate(zip(due, outcomes)):
                if isinstance(outcome, DeliveryFailure):
                    await self._failed(item, outcome, now)
                elif isinstance(outcome, Exception):
                    # As deliver() would raise it: this one stays leased (its
                    # lease runs out), the rest of the batch goes back.
                    self.let_go.update(row.id for row, later in zip(due[index + 1:], outcomes[index + 1:])
                                       if not isinstance(later, str))
                    raise outcome
        except Exception as exc:
            if outage(exc):  # nothing recorded: all of it goes back (the files written are found again)
                self.let_go.update(row.id for row in due)
            raise

    def _sign_and_write(self, due: list[Claimed], database: str | None) -> list[str | Exception]:
        """Each message opened, signed and written to the Maildir (a thread's
        work), after the log of the SQLite file ``database`` (if any) is
        flushed; its note, or what failed."""
        outcomes: list[str | Exception | None] = [None] * len(due)
        ready: list[tuple[int, tuple[bytes, str, str, str]]] = []
        for index, item in enumerate(due):
            try:
                raw = vault.open_with_master(self.master_key, item.sealed_message, _aad(item.rcpt_to))
                signed, envelope_from = self._sign(item, raw)
            except Exception as exc:
                outcomes[index] = exc
            else:
                # Named by the outbound id: a repeat after a crash writes nothing twice.
                ready.append((index, (signed, envelope_from, item.rcpt_to, f"outbound-{item.id}")))
        if ready and database is not None:
            flush_log(database)
        written = self.transport.write_many([message for _, message in ready])
        for (index, _), outcome in zip(ready, written):
            outcomes[index] = outcome
        return outcomes

    async def deliver(self, item: Claimed) -> None:
        now = self.clock()
        raw = vault.open_with_master(self.master_key, item.sealed_message, _aad(item.rcpt_to))
        try:
            raw, envelope_from = await self._stamped(item, raw)
            # Named by the outbound id: a repeat after a crash writes nothing twice.
            note = await self.transport.deliver(raw, envelope_from, item.rcpt_to, delivery_id=f"outbound-{item.id}")
        except DeliveryFailure as exc:
            await self._failed(item, exc, now)
            return
        await self._held(item).update(
            status=OutboundStatus.SENT, attempts=item.attempts + 1, sent_at=now, sealed_message=None,
            last_error=note[:2000], lease_until=None, lease_owner="")
        metrics.DELIVERIES.labels("sent").inc()
        log.info("outbound %s %s to %s delivered: %s", item.id, item.kind, item.rcpt_to, note)

    async def _failed(self, item: Claimed, failure: DeliveryFailure, now: datetime) -> None:
        """A delivery that failed: retried later, or given up."""
        attempts = item.attempts + 1
        if isinstance(failure, PermanentFailure):
            await self._give_up(item, attempts, str(failure), address_refused=failure.step == "RCPT TO")
        elif attempts >= self.max_attempts:
            await self._give_up(item, attempts, f"gave up after {attempts} attempts: {failure}")
        else:
            delay = retry_delay(attempts, self.retry_base_seconds)
            await self._held(item).update(
                attempts=attempts, last_error=str(failure)[:2000], next_attempt_at=now + timedelta(seconds=delay),
                lease_until=None, lease_owner="")
            metrics.DELIVERIES.labels("deferred").inc()
            log.warning("outbound %s to %s deferred (%s), retry in %.0fs", item.id, item.rcpt_to, failure, delay)

    async def _stamped(self, item: Claimed, raw: bytes) -> tuple[bytes, str]:
        return await asyncio.to_thread(self._sign, item, raw)

    def _sign(self, item: Claimed, raw: bytes) -> tuple[bytes, str]:
        """The message signed, and its own bounce address as envelope sender
        (CPU: run it on a thread)."""
        try:
            signed = self.signer.sign(raw)
        except SigningError as exc:
            raise PermanentFailure(f"cannot sign: {exc}") from None
        except (DkimKeyError, OSError) as exc:  # an operator can fix the key files
            raise TemporaryFailure(f"cannot sign: {exc}") from None
        return signed, self.verp.address(item.id, item.mail_from.rpartition("@")[2])

    async def _give_up(self, item: Claimed, attempts: int, reason: str, address_refused: bool = False) -> None:
        now = self.clock()
        if not await self._held(item).update(
                status=OutboundStatus.FAILED, attempts=attempts, last_error=reason[:2000], sealed_message=None,
                lease_until=None, lease_owner=""):
            return  # another runner has it now (the lease ran out): it decides
        metrics.DELIVERIES.labels("failed").inc()
        log.error("outbound %s %s to %s failed: %s", item.id, item.kind, item.rcpt_to, reason)
        if address_refused:
            # The client's address refused outright: the same news as a DSN.
            async with in_transaction():
                notice = await mark_bounced(item, reason, now)
                if notice is not None:
                    await enqueue_bounce_notice(self.composer, notice, master_key=self.master_key, now=now)
            if notice is not None:
                self.wake.set()
                return
        # Never tell anyone about a failed failure notice: that way lies a loop.
        if not item.notify_on_failure or item.kind == FAILURE_NOTICE:
            return
        await enqueue_notice(
            self.composer,
            master_key=self.master_key,
            kind=FAILURE_NOTICE,
            now=now,
            firm_domain=item.mail_from.rpartition("@")[2],
            to=item.notify_on_failure,
            subject=f"Undelivered: {item.subject}",
            paragraphs=[
                f"We could not deliver the message \"{item.subject}\" to {item.rcpt_to}.",
                f"The receiving server said: {reason}",
                "Please check the address and send the request again.",
            ],
        )
        self.wake.set()


async def enqueue_bounce_notice(composer: Composer, notice: BounceNotice, *, master_key: bytes,
                                now: datetime) -> None:
    """Queue the staff member's notice of a bounced request (outbound/bounced.py)."""
    await enqueue_notice(composer, master_key=master_key, kind=NOTICE_KIND, now=now, firm_domain=notice.firm.domain,
                         firm_name=notice.firm.name, to=notice.to, subject=notice.subject,
                         paragraphs=notice.paragraphs, request=notice.request)


def transport_for(relay_url: str | None, outbox_dir: Path, hostname: str) -> Transport:
    """The relay if a URL is configured, else the Maildir outbox.

    ``relay_url`` may also be a ``starlette.datastructures.Secret`` (as held
    by the settings); it is only turned into text here.
    """
    if relay_url is not None and str(relay_url).strip():
        return RelayTransport(str(relay_url), hostname=hostname)
    return MaildirTransport(Path(outbox_dir))
