"""Connections of our own to the ORM's SQLite file, one a thread, on
threads of ours.

The ORM reaches SQLite through aiosqlite: one connection on one thread,
and each statement (or function of statements, gateway/core/rows.py) a
trip there from the event loop and back: a wake-up of the loop and two
thread switches, and whatever else the process asked of that thread
waits its turn. Work that runs on a thread of ours anyway (the admission
intake's batches, the outbox's, a request's sealing on a crypto thread)
can run its statements where it is, on that thread's own connection: in
WAL mode the connections of one process read and write beside each other
as those of two processes do (writers take turns at the write lock:
gateway/core/writeturns.py, whose turns are kept per thread and
connection; SQLite's busy timeout for those that take none)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient

from gateway.core import rows

T = TypeVar("T")


def connect(path: str, pragmas: Mapping[str, object]) -> sqlite3.Connection:
    """A connection to the SQLite file at ``path``, in autocommit mode (its
    transactions are the caller's: rows.in_transaction), in WAL mode, with
    ``pragmas`` set (the ORM's, gateway/core/db.py: as durable as its
    connection, a busy timeout, the log's size limit, which each
    connection applies when it starts the log over). Usable from any
    thread, one at a time."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=5.0, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        for name, value in pragmas.items():
            connection.execute(f"PRAGMA {name}={value}")
    except BaseException:
        connection.close()
        raise
    return connection


def file_client() -> BaseDBAsyncClient | None:
    """The ORM's client when its database is a SQLite file; None on another
    database, or SQLite in memory (which no other connection sees). Ask on
    the event loop (the ORM's connections are found through its context)."""
    client = rows.sqlite_client()
    if client is None or client.filename in ("", ":memory:"):
        return None
    return client


class ThreadConnections:
    """A connection to the ORM's SQLite file for each thread that asks,
    with the ORM connection's PRAGMAs (the URL's among them) and
    ``overrides``: opened at the thread's first ask, kept for the next,
    opened again when the ORM's client is another (the ORM was set up
    again, on another file). close() closes them all, once no thread uses
    them."""

    def __init__(self, **overrides: object) -> None:
        self.overrides = overrides
        self._local = threading.local()
        self._opened: set[sqlite3.Connection] = set()
        self._lock = threading.Lock()

    def get(self, client: BaseDBAsyncClient) -> sqlite3.Connection:
        """The calling thread's connection to ``client``'s file (file_client())."""
        held = getattr(self._local, "held", None)
        if held is not None and held[0] is client:
            return held[1]
        if held is not None:
            self._forget(held[1])
        connection = connect(client.filename, {**client.pragmas, **self.overrides})
        with self._lock:
            self._opened.add(connection)
        self._local.held = (client, connection)
        return connection

    def run(self, client: BaseDBAsyncClient, work: Callable[..., T], *args: Any) -> T:
        """``work(connection, *args)`` on the calling thread's connection;
        SQLite's errors come out as the ORM's (rows.orm_errors)."""
        with rows.orm_errors():
            return work(self.get(client), *args)

    def _forget(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            self._opened.discard(connection)
        connection.close()

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, set()
        for connection in opened:
            connection.close()


class SqliteThread:
    """A thread of its own and its connection (ThreadConnections): ``await
    run(client, work, *args)`` is ``work(connection, *args)`` there, one
    trip from the event loop and back whatever ``work`` does."""

    def __init__(self, name: str, **overrides: object) -> None:
        self._connections = ThreadConnections(**overrides)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)

    async def run(self, client: BaseDBAsyncClient, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._connections.run, client, work, *args)

    async def close(self) -> None:
        """The connection closed on its thread once the work handed in has
        ended, then the thread ends. Returns once it is closed; the wait may
        be cancelled (a stop that cannot wait for work stuck on the disk),
        the closing is not."""
        closing = self._executor.submit(self._connections.close)
        self._executor.shutdown(wait=False)
        await asyncio.shield(asyncio.wrap_future(closing))
