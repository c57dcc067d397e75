"""Rows read in the event loop, written in a thread, one batch ahead."""

import asyncio
import threading

import pytest

from gateway.reports.stream import consume_in_thread

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


async def _batches(log: list, count: int = 3, size: int = 2):
    try:
        for n in range(count):
            log.append(("read", n, threading.current_thread() is threading.main_thread()))
            await asyncio.sleep(0)
            yield [n * size + i for i in range(size)]
    finally:
        log.append(("closed",))


async def test_the_writer_runs_in_a_thread_and_gets_every_row():
    log, handed = [], []

    def consume(rows):
        assert threading.current_thread() is not threading.main_thread()
        return list(rows)

    assert await consume_in_thread(_batches(log), consume, handed.append) == [0, 1, 2, 3, 4, 5]
    assert handed == [[0, 1], [2, 3], [4, 5]]
    assert all(entry[2] for entry in log if entry[0] == "read")  # the database side stays in the loop
    assert log[-1] == ("closed",)


async def test_a_writer_that_fails_stops_the_reading():
    log = []

    def consume(rows):
        next(iter(rows))
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        await consume_in_thread(_batches(log, count=100), consume)
    assert len([entry for entry in log if entry[0] == "read"]) <= 2  # the current batch and the one read ahead
    assert log[-1] == ("closed",)
