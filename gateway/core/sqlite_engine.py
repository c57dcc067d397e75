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
from tortoise.backends.base.client import TransactionContext

ENGINE = __name__


class ImmediateTransaction(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(ImmediateTransaction(self), self._lock)


# What Tortoise looks up in an engine module.
client_class = ImmediateSqliteClient
