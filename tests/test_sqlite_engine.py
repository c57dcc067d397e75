"""SQLite transactions take the write lock when they begin, so one that
read first does not fail when another process wrote meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from tortoise import connections
from tortoise.exceptions import TransactionManagementError
from tortoise.transactions import in_transaction

from gateway.core import db

from gateway.core.models import UnlockGuard
from gateway.service import running
from tests.conftest import make_settings
from tests.web_support import make_request

pytestmark = pytest.mark.no_database  # SQLite whatever the pass: the PostgreSQL pass would run the same again


async def test_a_transaction_that_read_first_still_writes_when_another_process_wants_to_write(tmp_path):
    # About SQLite itself, so on SQLite whatever database the run is for.
    path = tmp_path / "gateway.db"
    async with running(make_settings(tmp_path, database_url=f"sqlite://{path}", roles=("web",))) as gw:
        made = await make_request(gw.deps)
        await UnlockGuard.get_or_create(request_id=made.request.id)
        other_process = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            async with in_transaction():
                guard = await UnlockGuard.get(request_id=made.request.id)
                # The other writer is told to wait (it would wait out its
                # busy timeout) instead of slipping a commit in between...
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other_process.execute("UPDATE unlock_guard SET window_tries = 7")
                # ...so this transaction's write, after its read, goes through.
                guard.failures += 1
                await guard.save()
            other_process.execute("UPDATE unlock_guard SET window_tries = window_tries + 1")
        finally:
            other_process.close()
        guard = await UnlockGuard.get(request_id=made.request.id)
        assert (guard.failures, guard.window_tries) == (1, 1)


async def test_a_transaction_that_cannot_begin_gives_the_lock_back(tmp_path):
    path = tmp_path / "gateway.db"
    async with db.opened(f"sqlite://{path}?busy_timeout=200"):
        base = connections.get("default")
        other_process = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other_process.execute("BEGIN IMMEDIATE")  # holds the write lock past our busy timeout
            with pytest.raises(TransactionManagementError, match="locked"):
                await _a_transaction()
            other_process.execute("ROLLBACK")
        finally:
            other_process.close()
        assert connections.get("default") is base  # not the transaction that never began
        # Tortoise's own kept this process's transaction lock: this waited forever.
        await asyncio.wait_for(_a_transaction(), 10)
        assert await UnlockGuard.all().count() == 0


async def _a_transaction() -> None:
    async with in_transaction() as connection:
        await connection.execute_query("SELECT 1")
