"""Admitting a message into the inbound queue: the staff check, the hourly
limits and the durable insert, as one step, before the 250.

Messages that arrive together are admitted together (a group commit): one
writer takes everything waiting and, in one transaction, checks each
message and inserts it if admitted, then commits once; each SMTP session
hears its answer only after that commit. A message counts against the
limits of the next one in the same transaction, so the hourly limits hold
exactly however many messages arrive at once (they add up the per-minute
counts of models.AdmissionCount, kept in the same transaction). Messages arriving while a
commit is in flight go in the next one: a busy server commits in batches,
an idle one at once.

On SQLite the whole batch runs as one function in a thread of its own, on
its own connection to the database file (WAL lets the ORM's connection
read and write beside it): one hand-off a batch. Through the ORM the same
steps cost four hand-offs to its SQLite thread a message (BEGIN, the check,
the insert, COMMIT), and that was most of what admitting cost
(bench/bench_admission.py). Other databases take the same steps through the
ORM's connection (OrmIntake).
"""

from __future__ import annotations

import asyncio
import enum
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from gateway import hotpath
from gateway.inbound import Arrival
from gateway.models import InboundMessage, InboundStatus

MAX_BATCH = 64

# The columns an arrival fills; the others take their defaults, written out
# here as the ORM writes them (status queued, no attempts yet).
_INSERT = """
INSERT INTO inbound_message (id, status, mail_from, sender, firm_domain, rcpt_tos, peer, trusted_peer, size,
                             sealed_raw, attempts, last_error, outcome, received_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', '', ?)
"""


class Verdict(enum.Enum):
    ADMITTED = "admitted"
    NOT_STAFF = "not staff"
    SENDER_LIMIT = "sender over the hourly limit"
    FIRM_LIMIT = "firm over the hourly limit"


def decide(staff: bool, mine: int, total: int, sender_limit: int, firm_limit: int) -> Verdict:
    """From the admission query's answer (is staff, the sender's and the
    firm's messages in the last hour)."""
    if not staff:
        return Verdict.NOT_STAFF
    if mine >= sender_limit:
        return Verdict.SENDER_LIMIT
    if total >= firm_limit:
        return Verdict.FIRM_LIMIT
    return Verdict.ADMITTED


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
        verdicts = []
        async with in_transaction() as connection:
            for arrival in batch:
                staff, mine, total = await hotpath.admission(
                    arrival.firm_domain, arrival.sender, arrival.received_at, connection)
                verdict = decide(staff, mine, total, self.sender_limit, self.firm_limit)
                if verdict is Verdict.ADMITTED:
                    await InboundMessage.create(using_db=connection, **arrival.fields())
                    await hotpath.count_one(arrival.firm_domain, arrival.sender, arrival.received_at, connection)
                verdicts.append(verdict)
        return verdicts


class SqliteIntake(Intake):
    """One thread with its own connection to the SQLite file."""

    def __init__(self, path: str, sender_limit: int, firm_limit: int) -> None:
        super().__init__(sender_limit, firm_limit)
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake")
        self._connection: sqlite3.Connection | None = None

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._connect)

    def _connect(self) -> None:
        # Autocommit mode: the transaction is ours (BEGIN IMMEDIATE below).
        # As durable as the ORM's connection (gateway/db.py): FULL, and a
        # busy timeout for writers in other processes.
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA journal_mode=WAL")
        self._connection = connection

    async def _admit_batch(self, batch: list[Arrival]) -> list[Verdict]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run_batch, batch)

    def _run_batch(self, batch: list[Arrival]) -> list[Verdict]:
        connection = self._connection
        assert connection is not None, "open() first"
        verdicts = []
        # IMMEDIATE: the write lock from the start, so the counts read
        # cannot change before this transaction's inserts commit.
        connection.execute("BEGIN IMMEDIATE")
        try:
            for arrival in batch:
                domain, sender, now = arrival.firm_domain, arrival.sender, arrival.received_at
                staff, mine, total = connection.execute(
                    hotpath.ADMISSION, hotpath.admission_parameters(domain, sender, now)).fetchone()
                verdict = decide(bool(staff), mine, total, self.sender_limit, self.firm_limit)
                if verdict is Verdict.ADMITTED:
                    connection.execute(_INSERT, (
                        arrival.queue_id, InboundStatus.QUEUED.value, arrival.mail_from, sender, domain,
                        json.dumps(arrival.rcpt_tos), arrival.peer, int(arrival.trusted_peer), arrival.size,
                        arrival.sealed_raw, _stored_time(now),
                    ))
                    connection.execute(hotpath.COUNT_ONE, hotpath.count_parameters(domain, sender, now))
                verdicts.append(verdict)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return verdicts

    async def close(self) -> None:
        await super().close()
        if self._connection is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._connection.close)
        self._thread.shutdown(wait=True)


def _stored_time(moment: datetime) -> str:
    """A time as the ORM stores it in SQLite (UTC, ISO 8601 with a space),
    so that it compares as text with the rows the ORM wrote."""
    return moment.astimezone(timezone.utc).isoformat(" ")


def sqlite_path(database_url: str) -> str | None:
    """The file of a sqlite:// URL, or None for another database (or memory)."""
    parts = urlsplit(database_url)
    if parts.scheme != "sqlite":
        return None
    path = parts.netloc + parts.path
    return None if not path or path == ":memory:" else path


async def opened(database_url: str, sender_limit: int, firm_limit: int) -> Intake:
    """The intake for this database, ready; close() it when done."""
    path = sqlite_path(database_url)
    if path is None:
        return OrmIntake(sender_limit, firm_limit)
    intake = SqliteIntake(path, sender_limit, firm_limit)
    await intake.open()
    return intake
