"""Feeding rows read by the event loop to a writer running in a thread.

The database is async and lives in the event loop (tortoise keeps its
connections there); the writers are plain blocking code, and an XLSX of
100,000 rows takes seconds of CPU that must not stall the gateway's
loop. So the writer runs in a worker thread and pulls its rows through an
iterator that asks the loop for the next batch when it has written the
last. One batch lives at a time.
"""

from __future__ import annotations

import asyncio
from typing import AsyncGenerator, Callable, Iterable, Iterator, TypeVar

from gateway.reports.rows import Row

T = TypeVar("T")


async def consume_in_thread(
    batches: AsyncGenerator[list[Row], None],
    consume: Callable[[Iterable[Row]], T],
    on_batch: Callable[[list[Row]], None] = lambda batch: None,
) -> T:
    """Run ``consume(rows)`` in a thread; ``on_batch(batch)`` after each batch handed over."""
    loop = asyncio.get_running_loop()

    async def next_batch() -> list[Row] | None:
        return await anext(batches, None)

    def rows() -> Iterator[Row]:
        # One batch at a time, the writer waiting while it is read: reading
        # ahead in parallel made the two threads fight over the GIL, and the
        # sqlite thread waited out a switch interval for every row it fetched.
        while (batch := asyncio.run_coroutine_threadsafe(next_batch(), loop).result()) is not None:
            yield from batch
            on_batch(batch)

    def work() -> T:
        source = rows()
        try:
            return consume(source)
        finally:
            source.close()

    try:
        return await asyncio.to_thread(work)
    finally:
        await batches.aclose()
