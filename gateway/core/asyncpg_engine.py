"""Tortoise's PostgreSQL (asyncpg) backend, with transactions that leave
nothing behind when they fail to begin or to end.

Tortoise 1.1.9 opens ``in_transaction()`` in this order: take a connection
from the pool, make the transaction the task's connection (a context
variable), send BEGIN. When BEGIN fails (the server going down:
"connection was closed in the middle of operation"), ``__aexit__`` never
runs and nothing is undone: the task keeps the dead transaction as its
connection, and every later query of that task fails ("connection has been
released back to the pool") for as long as the task lives. At the end,
Tortoise gives the connection back to the pool before it resets the task's
connection; when giving it back fails (asyncpg resets the connection
first, which fails as the server goes away: "cannot switch to state 15;
another operation is in progress"), the reset is skipped, with the same
result. A runner loop is one task that lives as long as the process: after
a PostgreSQL restart such a loop never worked again (the 10 s outage test
in tests/test_processes.py, 2 runs of 5).

Here the connection goes back to the pool when BEGIN fails, the task's
connection is set only once the transaction has begun, and it is always
reset at the end. A pool connection is waited for at most
``POOL_ACQUIRE_TIMEOUT`` seconds, so that a pool that never hands one out
is an error a loop logs and /readyz shows, not a silent wait.

The module's name holds "asyncpg": Tortoise's migrations pick their schema
editor by the client class's module name. (gateway/core/sqlite_engine.py
is SQLite's counterpart.)
"""

from __future__ import annotations

import contextlib
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import PoolConnectionWrapper, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

ENGINE = __name__
POOL_ACQUIRE_TIMEOUT = 30.0


class PooledTransaction(TransactionContextPooled):
    __slots__ = ()

    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        pool = self.client._parent._pool
        connection = await pool.acquire(timeout=POOL_ACQUIRE_TIMEOUT)
        self.client._connection = connection
        try:
            await self.client.begin()
        except BaseException:
            with contextlib.suppress(Exception):
                await pool.release(connection)  # a closed one is terminated, its place freed
            raise
        self.token = get_connections().set(self.connection_name, self.client)
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type:
                    if exc_type is not TransactionManagementError:  # that one cannot be rolled back
                        await self.client.rollback()
                else:
                    await self.client.commit()
        finally:
            get_connections().reset(self.token)
            # When asyncpg cannot reset the connection it takes back, it
            # terminates it (which frees its place in the pool) and raises.
            # The work is committed or rolled back by then: that error must
            # not stand for it.
            with contextlib.suppress(Exception):
                await self.client._parent._pool.release(self.client._connection)


class PoolConnection(PoolConnectionWrapper):
    __slots__ = ()

    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        self.connection = await self.client._pool.acquire(timeout=POOL_ACQUIRE_TIMEOUT)
        return self.connection


class PostgresClient(AsyncpgDBClient):
    def _in_transaction(self) -> PooledTransaction:
        return PooledTransaction(TransactionWrapper(self), self._pool_init_lock)

    def acquire_connection(self) -> PoolConnection:
        return PoolConnection(self, self._pool_init_lock)


# What Tortoise looks up in an engine module.
client_class = PostgresClient
