"""The per-address bucket and the gate in front of Argon2id."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from web.throttle import AddressThrottle, Busy, DerivationGate

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


def test_an_address_gets_a_burst_then_one_try_per_refill():
    throttle = AddressThrottle(burst=3, refill_seconds=30, table_size=100)
    assert [throttle.take("a", 0) for _ in range(3)] == [0, 0, 0]
    assert throttle.take("a", 0) == 30
    assert throttle.take("a", 20) == 10
    assert throttle.take("b", 20) == 0  # others are not held back
    assert throttle.take("a", 30) == 0 and throttle.take("a", 30) == 30
    throttle.give_back("a", 30)  # a right password costs nothing
    assert throttle.take("a", 30) == 0


def test_the_table_of_addresses_stays_bounded():
    throttle = AddressThrottle(burst=2, refill_seconds=30, table_size=10)
    for n in range(1000):
        throttle.take(f"10.0.{n // 256}.{n % 256}", n)
        assert len(throttle._buckets) <= 10


async def test_at_most_the_slots_run_at_once_and_the_queue_is_bounded():
    gate = DerivationGate(slots=2, max_waiting=3)
    running, peak, release = 0, 0, threading.Event()
    lock = threading.Lock()

    def work() -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        time.sleep(0.01)
        with lock:
            running -= 1
        return "done"

    async def in_thread(fn, *args):
        return await asyncio.to_thread(fn, *args)

    tasks = [asyncio.create_task(gate.run(in_thread, work)) for _ in range(5)]
    await asyncio.sleep(0.1)
    assert gate.waiting == 3
    with pytest.raises(Busy):
        await gate.run(in_thread, work)
    release.set()
    assert await asyncio.gather(*tasks) == ["done"] * 5
    assert peak == 2 and gate.waiting == 0
