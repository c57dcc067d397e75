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
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from tortoise.transactions import in_transaction

from gateway.admission import sql
from gateway.core.datadir import sqlite_path
from gateway.core import rows
from gateway.core.db import stored_time
from gateway.core.models import AcceptedMessageId, InboundMessage, InboundStatus
from gateway.inbound.queue import Arrival

MAX_BATCH = 64

# The columns an arrival fills; the others take their defaults, written out
# here as the ORM writes them (status queued, no attempts yet).
_INSERT = """
INSERT INTO inbound_message (id, status, mail_from, sender, firm_domain, rcpt_tos, peer, trusted_peer, size,
                             sealed_raw, body_blob, body_salt, attempts, last_error, outcome, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', ?)
"""


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


class Intake:
    """The group commit; subclasses say how a batch is checked and stored."""

    def __init__(self, sender_limit: int, firm_limit: int) -> None:
        self.sender_limit = sender_limit
        self.firm_limit = firm_limit
        self._pending: list[tuple[Arrival, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def admit(self, arrival: Arrival) -> Verdict:
        """The verdict, once an admitted message is committed. Raises if the
        batch could not be committed: then nothing of it was stored."""
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
                verdicts = await self._admit_batch([arrival for arrival, _ in batch])
            except Exception as exc:  # every waiter hears it, and answers 451
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for (_, done), verdict in zip(batch, verdicts):
                    if not done.done():
                        done.set_result(verdict)

    async def _admit_batch(self, batch: list[Arrival]) -> list[Verdict]:
        raise NotImplementedError

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)


class OrmIntake(Intake):
    """Through the ORM's connection, for any database it supports."""

    async def _admit_batch(self, batch: list[Arrival]) -> list[Verdict]:
        async with in_transaction() as connection:
            counts = {key: await sql.admission(*key, now, connection) for key, now in _senders(batch).items()}
            accepted = {key for key in _message_keys(batch) if await sql.message_accepted(*key, connection)}
            verdicts = decide_batch(batch, counts, self.sender_limit, self.firm_limit, accepted)
            admitted = _admitted(batch, verdicts)
            await InboundMessage.bulk_create([InboundMessage(**arrival.fields()) for arrival in admitted],
                                             using_db=connection)
            await sql.add_counts(_counted(admitted), connection)
            await AcceptedMessageId.bulk_create(
                [AcceptedMessageId(firm_domain=arrival.firm_domain, digest=arrival.message_key,
                                   accepted_at=arrival.received_at) for arrival in admitted if arrival.message_key],
                using_db=connection)
        return verdicts


class SqliteIntake(Intake):
    """One thread with its own connection to the SQLite file."""

    def __init__(self, path: str, sender_limit: int, firm_limit: int, pragmas: dict[str, str] | None = None) -> None:
        super().__init__(sender_limit, firm_limit)
        self.path = path
        self.pragmas = pragmas or {}
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake")
        self._connection: sqlite3.Connection | None = None

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._connect)

    def _connect(self) -> None:
        # Autocommit mode: the transaction is ours (BEGIN IMMEDIATE below).
        # As durable as the ORM's connection (gateway/core/db.py): FULL, and a
        # busy timeout for writers in other processes.
        # The URL's parameters are PRAGMAs here too, as Tortoise makes them
        # on the ORM's connection (a limit set there holds for both).
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA journal_mode=WAL")
        for name, value in self.pragmas.items():
            connection.execute(f"PRAGMA {name}={value}")
        self._connection = connection

    async def _admit_batch(self, batch: list[Arrival]) -> list[Verdict]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run_batch, batch)

    def _run_batch(self, batch: list[Arrival]) -> list[Verdict]:
        connection = self._connection
        assert connection is not None, "open() first"
        # A few statements a batch, not a few a message: each call into
        # SQLite lets go of the GIL and takes it back, and every such hand-
        # over cost the event loop's thread more than the SQL itself.
        # IMMEDIATE: the write lock from the start, so the counts read
        # cannot change before this transaction's inserts commit.
        return rows.in_transaction(connection, self._decide_and_write, batch)

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
             arrival.size, arrival.sealed_raw, arrival.body_blob, arrival.body_salt,
             stored_time(arrival.received_at))
            for arrival in admitted
        ])
        connection.executemany(sql.ADD_COUNT, sql.count_rows(_counted(admitted)))
        connection.executemany(sql.ADD_MESSAGE_ID, [
            (arrival.firm_domain, arrival.message_key, stored_time(arrival.received_at))
            for arrival in admitted if arrival.message_key])
        return verdicts

    async def close(self) -> None:
        await super().close()
        if self._connection is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._connection.close)
        self._thread.shutdown(wait=True)


async def opened(database_url: str, sender_limit: int, firm_limit: int) -> Intake:
    """The intake for this database, ready; close() it when done."""
    path = sqlite_path(database_url)
    if path is None:
        return OrmIntake(sender_limit, firm_limit)
    intake = SqliteIntake(path, sender_limit, firm_limit, url_pragmas(database_url))
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
