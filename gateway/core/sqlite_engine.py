"""Tortoise's SQLite backend, with transactions that take the write lock
when they begin.

Tortoise begins a transaction with a plain ``BEGIN`` (deferred): it reads
from a snapshot and asks for the write lock only at its first write. When
another process (a second front, `clienttrack blobs migrate`, a runner)
committed in between, SQLite cannot let that snapshot write and answers
"database is locked" at once, without waiting out the busy timeout: an
unlock try that reads its guard and then counts the try failed that way.
``BEGIN IMMEDIATE`` takes the write lock first, waiting for it under the
busy timeout, so a transaction's reads and writes see one state.
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.connection import get_connections

ENGINE = __name__


class ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class LockFreedTransactionContext(SqliteTransactionContext):
    """Tortoise's, but the client's transaction lock is given back when
    BEGIN fails, and the task's connection is set only once it has begun.
    Tortoise's kept the lock then: BEGIN IMMEDIATE fails with "database is
    locked" once the busy timeout runs out (another process holding the
    write lock that long), and every later transaction of this process
    waited for the kept lock forever. (gateway/core/asyncpg_engine.py says
    the same of PostgreSQL's.)"""

    __slots__ = ()

    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            await self.connection.begin()
        except BaseException:
            self._trxlock.release()
            raise
        self.token = get_connections().set(self.connection_name, self.connection)
        return self.connection


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return LockFreedTransactionContext(ImmediateTransaction(self), self._lock)


# What Tortoise looks up in an engine module.
client_class = ImmediateSqliteClient
