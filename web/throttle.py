"""In-process limits on unlock attempts: a per-address token bucket, and a
gate that bounds how many Argon2id derivations run or wait at once.

Both live in one web process's memory. The per-request lock and hourly cap
(web/lockout.py) are in the database, so they hold across processes; these
two only protect the process they run in, which is what they are for.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")


class AddressThrottle:
    """Each address holds up to ``burst`` tokens and gains one every
    ``refill_seconds``. A try takes a token up front (so tries racing each
    other are all counted) and gives it back when the password was right."""

    def __init__(self, burst: int, refill_seconds: float, table_size: int) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.table_size = table_size
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - at) / self.refill_seconds)

    def take(self, address: str, now: float) -> float:
        """0 if a try may go ahead (and is counted), else seconds to wait."""
        tokens = self._level(address, now)
        if tokens < 1:
            # Rounded first: 10.000000000000002 seconds is 10, not 11.
            return math.ceil(round((1 - tokens) * self.refill_seconds, 6))
        if address not in self._buckets and len(self._buckets) >= self.table_size:
            self._prune(now)
        self._buckets[address] = (tokens - 1, now)
        return 0

    def give_back(self, address: str, now: float) -> None:
        self._buckets[address] = (min(self.burst, self._level(address, now) + 1), now)

    def _prune(self, now: float) -> None:
        full = [a for a in self._buckets if self._level(a, now) >= self.burst]
        for address in full:
            del self._buckets[address]
        if len(self._buckets) >= self.table_size:
            # Every remembered address is still throttled: forget the oldest
            # rather than grow without bound under a flood of addresses.
            oldest = sorted(self._buckets, key=lambda a: self._buckets[a][1])
            for address in oldest[: len(oldest) // 2]:
                del self._buckets[address]


class Busy(Exception):
    """Too many derivations are waiting already: try again shortly."""

    retry_after = 5


class DerivationGate:
    """At most ``slots`` derivations at once; at most ``max_waiting`` more
    queue for a slot, and any beyond that are refused with :class:`Busy`,
    so a flood of attempts costs neither memory nor an unbounded queue."""

    def __init__(self, slots: int, max_waiting: int) -> None:
        self._slots = asyncio.Semaphore(slots)
        self.max_waiting = max_waiting
        self.waiting = 0

    async def run(self, runner: Callable[..., Awaitable[T]], fn: Callable[..., T], *args: Any) -> T:
        """``await runner(fn, *args)`` once a slot is free (runner is the
        crypto pool's, so the work happens off the event loop)."""
        if self._slots.locked() and self.waiting >= self.max_waiting:
            raise Busy()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            return await runner(fn, *args)
        finally:
            self._slots.release()
