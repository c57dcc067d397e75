"""Opening the database and creating the schema on first start."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

from tortoise import Tortoise

from gateway.core import datadir

if TYPE_CHECKING:
    from gateway.core.settings import Settings

MODELS = ["gateway.core.models", "gateway.payments.models"]


def tortoise_url(database_url: str) -> str:
    # Tortoise turns URL query parameters into PRAGMAs. FULL makes every
    # commit durable before we answer 250; the busy timeout lets processes
    # that split the roles wait for each other's write lock.
    if database_url.startswith("sqlite://") and "?" not in database_url:
        return database_url + "?synchronous=FULL&busy_timeout=5000"
    return database_url


@contextlib.asynccontextmanager
async def opened(database_url: str) -> AsyncIterator[None]:
    await Tortoise.init(db_url=tortoise_url(database_url), modules={"models": MODELS}, _enable_global_fallback=True)
    try:
        await Tortoise.generate_schemas(safe=True)
        yield
    finally:
        await Tortoise.close_connections()


def run(settings: "Settings", work: Callable[[], Awaitable[int]]) -> int:
    """Run one command-line job against the database; its exit code."""
    async def opened_work() -> int:
        datadir.prepare(settings.data_dir, settings.database)
        async with opened(settings.database):
            return await work()

    return asyncio.run(opened_work())
