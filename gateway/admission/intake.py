"""Admitting a message into the inbound queue: the staff check, the hourly
limits and the durable insert, as one step, before the 250.

Messages that arrive together are admitted together (a group commit): one
writer takes everything waiting and, in one transaction, reads the counts
of each firm and sender in the batch once, decides every message in order
(decide_batch: a message admitted counts against the next, so the hourly
limits hold exactly however many arrive at once; a signed message whose
Message-ID the firm accepted before, or earlier in the batch, is refused
as a replay), inserts the admitted ones with their per-minute counts
(models.AdmissionCount) and their Message-IDs (models.AcceptedMessageId,
unique per firm: two processes cannot both admit one), and commits once; each SMTP session hears its answer only after that commit. Messages
arriving while a commit is in flight go in the next one: a busy server
commits in batches, an idle one at once.

On SQLite the whole batch runs as one function in a thread of its own, on
its own connection to the database file (WAL lets the ORM's connection
read and write beside it): one hand-off a batch, and a few statements.
Through the ORM the same steps cost four hand-offs to its SQLite thread a
message (BEGIN, the check, the insert, COMMIT), and that was most of what
admitting cost (bench/bench_admission.py). Other databases take the same
steps through the ORM's connection (OrmIntake).

Several processes (`serve`'s workers) admit into one SQLite file, each
with its intake: they take turns through an exclusive lock on a file
beside the database (flock on "<database>-intake"), taken before BEGIN and
let go after COMMIT (gateway/core/writeturns.py: the runners' hot writes
take their turns there too). Waiting for it is the kernel's queue: the next intake
goes on as soon as the last one commits, and takes everything that reached
its thread meanwhile. Without it they met at SQLite's write lock, whose
busy handler sleeps 1, 2, 5, 10 ms... and retries: two front processes
accepted no faster than one (BENCHMARKS.md, issue 18).

The intake's thread waits for the turn in flock itself, for as long as
it takes, and the wait's time limit (writeturns.WAIT_MOST: a holder that
hangs) is kept by the event loop instead: what was handed in and not
taken into a batch within the limit is answered TurnNotGiven (451, the
sending server tries again) and never written (_Handed). Through a
writeturns.Turns, every contended turn went through a waiter thread: two
more context switches each, ~1 a message while two front processes
accept (stop 29, BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import fcntl
import json
import os
import queue
import re
import sqlite3
import threading
import time
from collections import Counter
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from tortoise.transactions import in_transaction

from gateway.admission import sql
from gateway.core.datadir import sqlite_path
from gateway.core import rows, sqlite_threads
from gateway.core.db import stored_time, tortoise_url
from gateway.core.models import AcceptedMessageId, InboundMessage, InboundRaw, InboundStatus
from gateway.core import writeturns
from gateway.inbound.queue import Arrival

MAX_BATCH = 64


# The columns an arrival fills; the others take their defaults, written out
# here as the ORM writes them (status queued, no attempts yet). The sealed
# message goes in a table of its own (models.InboundRaw).
_INSERT = """
INSERT INTO inbound_message (id, status, mail_from, sender, firm_domain, rcpt_tos, peer, trusted_peer, size,
                             body_blob, body_salt, attempts, last_error, outcome, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', ?)
"""
_INSERT_RAW = "INSERT INTO inbound_raw (id, sealed_raw) VALUES (?, ?)"


class Verdict(enum.Enum):
    ADMITTED = "admitted"
    NOT_STAFF = "not staff"
    REPLAYED = "Message-ID accepted before"
    SENDER_LIMIT = "sender over the hourly limit"
    FIRM_LIMIT = "firm over the hourly limit"


def decide(staff: bool, mine: int, total: int, sender_limit: int, firm_limit: int, replayed: bool = False) -> Verdict:
    """From the admission query's answer (is staff, the sender's and the
    firm's messages in the last hour) and whether the Message-ID was
    accepted before."""
    if not staff:
        return Verdict.NOT_STAFF
    if replayed:
        return Verdict.REPLAYED
    if mine >= sender_limit:
        return Verdict.SENDER_LIMIT
    if total >= firm_limit:
        return Verdict.FIRM_LIMIT
    return Verdict.ADMITTED


Counts = tuple[bool, int, int]  # is staff, the sender's and the firm's messages in the window


def decide_batch(batch: list[Arrival], counts: dict[tuple[str, str], Counts], sender_limit: int,
                 firm_limit: int, accepted: set[tuple[str, str]] = frozenset()) -> list[Verdict]:
    """Each message's verdict, in order, from the counts before the batch
    (per firm and sender) and the Message-IDs already accepted (per firm,
    see _message_keys): a message admitted counts against the next, and
    its Message-ID is then taken."""
    added_by_sender: Counter[tuple[str, str]] = Counter()
    added_by_firm: Counter[str] = Counter()
    taken = set(accepted)
    verdicts = []
    for arrival in batch:
        key = (arrival.firm_domain, arrival.sender)
        staff, mine, total = counts[key]
        message = (arrival.firm_domain, arrival.message_key)
        verdict = decide(staff, mine + added_by_sender[key], total + added_by_firm[arrival.firm_domain],
                         sender_limit, firm_limit, replayed=bool(arrival.message_key) and message in taken)
        if verdict is Verdict.ADMITTED:
            added_by_sender[key] += 1
            added_by_firm[arrival.firm_domain] += 1
            taken.add(message)
        verdicts.append(verdict)
    return verdicts


def _message_keys(batch: list[Arrival]) -> list[tuple[str, str]]:
    """The (firm, Message-ID digest) pairs of the batch's signed messages."""
    return sorted({(arrival.firm_domain, arrival.message_key) for arrival in batch if arrival.message_key})


def _senders(batch: list[Arrival]) -> dict[tuple[str, str], datetime]:
    """Each (firm, sender) of the batch, with the time its counts are read at:
    its first message's (a batch spans milliseconds)."""
    senders: dict[tuple[str, str], datetime] = {}
    for arrival in batch:
        senders.setdefault((arrival.firm_domain, arrival.sender), arrival.received_at)
    return senders


def _admitted(batch: list[Arrival], verdicts: list[Verdict]) -> list[Arrival]:
    return [arrival for arrival, verdict in zip(batch, verdicts) if verdict is Verdict.ADMITTED]


def _counted(admitted: list[Arrival]) -> list[tuple[str, str, datetime]]:
    return [(arrival.firm_domain, arrival.sender, arrival.received_at) for arrival in admitted]


Waiting = list[tuple[Arrival, asyncio.Future]]


def _answer(batch: Waiting, verdicts: list[Verdict] | Exception) -> None:
    """Each waiter's verdict, or the batch's failure (every waiter answers 451)."""
    for index, (_, done) in enumerate(batch):
        if not done.done():
            if isinstance(verdicts, Exception):
                done.set_exception(verdicts)
            else:
                done.set_result(verdicts[index])


class Intake:
    """The group commit; subclasses say how a batch is checked and stored."""

    def __init__(self, sender_limit: int, firm_limit: int) -> None:
        self.sender_limit = sender_limit
        self.firm_limit = firm_limit
        self._pending: Waiting = []

    async def admit(self, arrival: Arrival) -> Verdict:
        """The verdict, once an admitted message is committed. Raises if the
        batch could not be committed: then nothing of it was stored."""
        raise NotImplementedError

    async def close(self) -> None:
        """Once the last batch handed in is answered."""


class OrmIntake(Intake):
    """Through the ORM's connection, for any database it supports: a task
    writes a batch at a time."""

    def __init__(self, sender_limit: int, firm_limit: int) -> None:
        super().__init__(sender_limit, firm_limit)
        self._writer: asyncio.Task | None = None

    async def admit(self, arrival: Arrival) -> Verdict:
        done = asyncio.get_running_loop().create_future()
        self._pending.append((arrival, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await done

    async def _write(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # whatever arrives in this turn of the loop joins
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                verdicts: list[Verdict] | Exception = await self._admit_batch([arrival for arrival, _ in batch])
            except Exception as exc:
                verdicts = exc
            _answer(batch, verdicts)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _admit_batch(self, batch: list[Arrival]) -> list[Verdict]:
        async with in_transaction() as connection:
            counts = {key: await sql.admission(*key, now, connection) for key, now in _senders(batch).items()}
            accepted = {key for key in _message_keys(batch) if await sql.message_accepted(*key, connection)}
            verdicts = decide_batch(batch, counts, self.sender_limit, self.firm_limit, accepted)
            admitted = _admitted(batch, verdicts)
            await InboundMessage.bulk_create([InboundMessage(**arrival.fields()) for arrival in admitted],
                                             using_db=connection)
            await InboundRaw.bulk_create([arrival.raw() for arrival in admitted], using_db=connection)
            await sql.add_counts(_counted(admitted), connection)
            await AcceptedMessageId.bulk_create(
                [AcceptedMessageId(firm_domain=arrival.firm_domain, digest=arrival.message_key,
                                   accepted_at=arrival.received_at) for arrival in admitted if arrival.message_key],
                using_db=connection)
        return verdicts


class _Handed:
    """What one turn of the event loop handed to the intake's thread. Once
    the thread has the write turn it takes it into a batch, unless the
    loop gave up on it first (the turn did not come within
    writeturns.WAIT_MOST: answered TurnNotGiven); never both
    (SqliteIntake._taking)."""

    __slots__ = ("waiting", "since", "taken", "given_up")

    def __init__(self, waiting: Waiting) -> None:
        self.waiting = waiting
        self.since = time.monotonic()
        self.taken = False
        self.given_up = False


class SqliteIntake(Intake):
    """A thread of its own with its own connection to the SQLite file, fed
    through a queue: what arrives in one turn of the event loop goes in as
    one hand-off, and the thread takes every hand-off waiting when it
    begins a batch; it answers with one call into the loop a batch."""

    def __init__(self, path: str, sender_limit: int, firm_limit: int, pragmas: dict[str, str] | None = None) -> None:
        super().__init__(sender_limit, firm_limit)
        self.path = path
        self.pragmas = pragmas or {}
        self._handed: queue.SimpleQueue[_Handed | None] = queue.SimpleQueue()
        self._taking = threading.Lock()  # a hand-off taken into a batch, or given up on
        self._turns = -1  # the thread's descriptor of the turns file (held_by names who holds it)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(opened,), name="intake", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(opened)

    async def admit(self, arrival: Arrival) -> Verdict:
        assert self._loop is not None, "open() first"
        done = self._loop.create_future()
        self._pending.append((arrival, done))
        if len(self._pending) == 1:
            self._loop.call_soon(self._hand_over)  # after the rest of this turn
        return await done

    def _hand_over(self) -> None:
        if self._pending:
            handed = _Handed(self._pending)
            self._pending = []
            self._handed.put(handed)
            self._loop.call_later(min(writeturns.WARN_AFTER, writeturns.WAIT_MOST), self._still_waiting, handed)

    def _still_waiting(self, handed: _Handed) -> None:
        """Past WARN_AFTER a hand-off not yet taken is logged; past
        WAIT_MOST it is given up on, and its sessions answer 451."""
        with self._taking:
            if handed.taken:
                return
            waited = time.monotonic() - handed.since
            handed.given_up = waited >= writeturns.WAIT_MOST
        if not handed.given_up:
            writeturns.warn_waiting(writeturns.turns_path(self.path), self._turns)
            self._loop.call_later(writeturns.WAIT_MOST - waited, self._still_waiting, handed)
            return
        _answer(handed.waiting, writeturns.not_given(writeturns.turns_path(self.path), self._turns,
                                                     writeturns.WAIT_MOST))

    def _serve(self, opened: concurrent.futures.Future) -> None:
        """The intake's thread, until close() hands in None."""
        try:
            # The ORM's PRAGMAs (gateway/core/db.py tortoise_url: the URL's
            # parameters, and the defaults it does not set).
            connection = sqlite_threads.connect(self.path, self.pragmas)
        except BaseException as exc:
            opened.set_exception(exc)
            return
        try:
            self._turns = writeturns.open_turns(self.path)
        except BaseException as exc:
            connection.close()
            opened.set_exception(exc)
            return
        opened.set_result(None)
        try:
            self._batches(connection, self._turns)
        finally:
            os.close(self._turns)
            connection.close()

    def _batches(self, connection: sqlite3.Connection, turns: int) -> None:
        handoffs: list[_Handed] = []
        stopping = False
        while handoffs or not stopping:
            if not handoffs:
                handed = self._handed.get()
                if handed is None:
                    return
                handoffs.append(handed)
            batch: Waiting = []
            try:
                # This process's turn (the module's docstring), waited for
                # here however long: the loop gives up on what waits too long.
                fcntl.flock(turns, fcntl.LOCK_EX)
                try:
                    stopping = self._take_handed(handoffs) or stopping
                    batch = self._batch(handoffs)
                    # A few statements a batch, not a few a message: each call
                    # into SQLite lets go of the GIL and takes it back, and every
                    # such hand-over cost the event loop's thread more than the
                    # SQL itself. IMMEDIATE: the write lock from the start, so
                    # the counts read cannot change before the inserts commit.
                    verdicts: list[Verdict] | Exception = rows.in_transaction(
                        connection, self._decide_and_write, [arrival for arrival, _ in batch]) if batch else []
                finally:
                    fcntl.flock(turns, fcntl.LOCK_UN)
            except Exception as exc:  # every waiter hears it, and answers 451
                if not batch:
                    batch = self._batch(handoffs)
                verdicts = exc
            if batch:
                self._loop.call_soon_threadsafe(_answer, batch, verdicts)

    def _take_handed(self, handoffs: list[_Handed]) -> bool:
        """Every hand-off made meanwhile, onto ``handoffs``; True if close()'s None was among it."""
        stopping = False
        while True:
            try:
                handed = self._handed.get_nowait()
            except queue.Empty:
                return stopping
            if handed is None:
                stopping = True
            else:
                handoffs.append(handed)

    def _batch(self, handoffs: list[_Handed]) -> Waiting:
        """The next batch: hand-offs taken from the front of ``handoffs``
        (whole, up to MAX_BATCH messages or the first past it), less those
        the loop gave up on (answered 451 already: never written)."""
        batch: Waiting = []
        with self._taking:
            while handoffs and len(batch) < MAX_BATCH:
                handed = handoffs.pop(0)
                if not handed.given_up:
                    handed.taken = True
                    batch.extend(handed.waiting)
        return batch

    def _decide_and_write(self, connection: sqlite3.Connection, batch: list[Arrival]) -> list[Verdict]:
        counts = {}
        for (domain, sender), now in _senders(batch).items():
            staff, mine, total = connection.execute(
                sql.ADMISSION, sql.admission_parameters(domain, sender, now)).fetchone()
            counts[(domain, sender)] = (bool(staff), mine, total)
        accepted = {key for key in _message_keys(batch)
                    if connection.execute(sql.MESSAGE_ACCEPTED, key).fetchone()}
        verdicts = decide_batch(batch, counts, self.sender_limit, self.firm_limit, accepted)
        admitted = _admitted(batch, verdicts)
        connection.executemany(_INSERT, [
            (arrival.queue_id, InboundStatus.QUEUED.value, arrival.mail_from, arrival.sender,
             arrival.firm_domain, json.dumps(arrival.rcpt_tos), arrival.peer, int(arrival.trusted_peer),
             arrival.size, arrival.body_blob, arrival.body_salt, stored_time(arrival.received_at))
            for arrival in admitted
        ])
        connection.executemany(_INSERT_RAW, [(arrival.queue_id, arrival.sealed_raw) for arrival in admitted])
        connection.executemany(sql.ADD_COUNT, sql.count_rows(_counted(admitted)))
        connection.executemany(sql.ADD_MESSAGE_ID, [
            (arrival.firm_domain, arrival.message_key, stored_time(arrival.received_at))
            for arrival in admitted if arrival.message_key])
        return verdicts

    async def close(self) -> None:
        if self._thread is None:
            return
        self._hand_over()
        self._handed.put(None)
        # At most WAIT_MOST: a thread still waiting for a turn a hung
        # process holds has had its hand-offs answered by then.
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, writeturns.WAIT_MOST)
        self._thread = None


async def opened(database_url: str, sender_limit: int, firm_limit: int) -> Intake:
    """The intake for this database, ready; close() it when done."""
    path = sqlite_path(database_url)
    if path is None:
        return OrmIntake(sender_limit, firm_limit)
    intake = SqliteIntake(path, sender_limit, firm_limit, url_pragmas(tortoise_url(database_url)))
    await intake.open()
    return intake


_PRAGMA = re.compile(r"[a-z_]+")
_PRAGMA_VALUE = re.compile(r"[A-Za-z0-9_.-]+")


def url_pragmas(database_url: str) -> dict[str, str]:
    """A sqlite:// URL's parameters (``?synchronous=FULL&busy_timeout=5000``)."""
    pragmas = dict(parse_qsl(urlsplit(database_url).query))
    for name, value in pragmas.items():
        if not _PRAGMA.fullmatch(name) or not _PRAGMA_VALUE.fullmatch(value):
            raise ValueError(f"not a SQLite PRAGMA: {name}={value}")
    return pragmas
