"""Opening the database: an empty one is made at the latest migration, one
that is behind is upgraded only when the settings say so (gateway/core/schema.py)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from gateway.core import datadir, schema

if TYPE_CHECKING:
    from gateway.core.settings import Settings

MODELS = schema.MODELS


def tortoise_url(database_url: str) -> str:
    # Tortoise turns URL query parameters into PRAGMAs. FULL makes every
    # commit durable before we answer 250; the busy timeout lets processes
    # that split the roles wait for each other's write lock.
    if database_url.startswith("sqlite://") and "?" not in database_url:
        return database_url + "?synchronous=FULL&busy_timeout=5000"
    return database_url


@contextlib.asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[None]:
    """The ORM on this database, whatever its schema version."""
    # Tortoise caches each table's INSERT and DELETE by connection name, not
    # by database: in a process that opened a SQLite database before (the
    # test suite on PostgreSQL does), "default" would keep SQLite's "?"
    # placeholders, and PostgreSQL answers "syntax error at or near ','".
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=schema.tortoise_config(tortoise_url(database_url)), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def opened(database_url: str, *, upgrade_on_start: bool = False) -> AsyncIterator[None]:
    """The ORM on this database at the schema this code needs: an empty
    database is made, one that is behind raises schema.SchemaBehind (which
    names the command) unless ``upgrade_on_start``."""
    async with connected(database_url):
        await schema.ensure_current(database_url, upgrade_on_start=upgrade_on_start)
        yield


def run(settings: "Settings", work: Callable[[], Awaitable[int]]) -> int:
    """Run one command-line job against the database; its exit code."""
    async def opened_work() -> int:
        datadir.prepare(settings.data_dir, settings.database)
        async with opened(settings.database, upgrade_on_start=settings.upgrade_on_start):
            return await work()

    return asyncio.run(opened_work())


def stored_time(moment: datetime) -> str:
    """A time as the ORM stores it in SQLite (UTC, ISO 8601 with a space),
    so that SQL of our own compares it as text with the rows the ORM wrote."""
    return moment.astimezone(timezone.utc).isoformat(" ")
