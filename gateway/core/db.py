"""Opening the database: an empty one is made at the latest migration, one
that is behind is upgraded only when the settings say so (gateway/core/schema.py)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from gateway.core import datadir, schema

if TYPE_CHECKING:
    from gateway.core.settings import Settings

MODELS = schema.MODELS


# The write-ahead log is cut back to this size when it starts over after a
# checkpoint, and kept at up to this size otherwise. Tortoise's default
# (16 KB) cut it back at each restart, about every 12 requests under load:
# SQLite then grew the file again frame by frame (the kernel allocating
# each page of it anew, and each commit's fdatasync flushing the file's
# new size too), where writing into a log of its usual size reuses its
# pages. Its usual size: SQLite checkpoints at 1000 pages (4 MB), a busy
# gateway's log reached 4.9 MB; what a burst grows beyond the limit is
# given back at the next restart.
WAL_SIZE_LIMIT = 16 * 1024 * 1024

# Each connection's PRAGMAs on a SQLite database, unless the URL sets its
# own. FULL makes every commit durable before we answer 250 (unless the
# code flushes it otherwise: gateway/core/rows.py unflushed); the busy
# timeout lets processes that split the roles wait for each other's
# write lock.
SQLITE_PRAGMAS = {"synchronous": "FULL", "busy_timeout": "5000", "journal_size_limit": str(WAL_SIZE_LIMIT)}


def tortoise_url(database_url: str) -> str:
    """The URL the ORM opens (Tortoise turns its query parameters into
    PRAGMAs): on SQLite, with each of SQLITE_PRAGMAS the URL does not set.
    The admission's own connection takes the same (gateway/admission/intake.py)."""
    if not database_url.startswith("sqlite://"):
        return database_url
    named = {name for name, _ in parse_qsl(urlsplit(database_url).query)}
    added = "&".join(f"{name}={value}" for name, value in SQLITE_PRAGMAS.items() if name not in named)
    if not added:
        return database_url
    return f"{database_url}{'&' if '?' in database_url else '?'}{added}"


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
