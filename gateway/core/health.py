"""Runners that never die quietly.

Every background loop (queue workers, the outbox, housekeeping, the lease
keeper) runs its step through ``keep_running``: an exception is logged
once (with its traceback) when the loop starts failing, the loop backs off
and retries, and says so once when it works again. ``Health`` remembers
which loops are failing and which have stopped, for /readyz.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from typing import Awaitable, Callable

from tortoise.exceptions import DBConnectionError, OperationalError, TransactionManagementError

log = logging.getLogger("clienttrack.health")

BACKOFF_FIRST = 0.2
BACKOFF_MOST = 5.0


class Health:
    """The loops of this process, as /readyz reads them."""

    def __init__(self) -> None:
        self._loops: set[str] = set()
        self._failing: dict[str, str] = {}
        self._stopped: set[str] = set()

    def started(self, name: str) -> None:
        self._loops.add(name)
        self._stopped.discard(name)

    def ok(self, name: str) -> None:
        self._failing.pop(name, None)

    def failing(self, name: str, why: str) -> None:
        self._failing[name] = why

    def stopped(self, name: str) -> None:
        self._stopped.add(name)

    def problems(self) -> dict[str, str]:
        """Each loop that cannot work now, and why; empty when all can."""
        found = {name: f"failing: {why}" for name, why in self._failing.items()}
        found.update({name: "stopped" for name in self._stopped})
        return dict(sorted(found.items()))

    @property
    def loops(self) -> list[str]:
        return sorted(self._loops)


def outage(exc: BaseException) -> bool:
    """An error of the database or the disk, not of the message at hand:
    retrying later is right, counting it against the message is not."""
    if isinstance(exc, (DBConnectionError, OperationalError, TransactionManagementError, sqlite3.OperationalError,
                        ConnectionError, OSError, TimeoutError)):
        return True
    module = type(exc).__module__ or ""
    return module.startswith("asyncpg")  # connection lost, server shutting down, too many clients...


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) says there is no space
    to store: SQLite's "database or disk is full", PostgreSQL's disk_full
    (SQLSTATE 53100), or ENOSPC/EDQUOT from the file system."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(exc, "sqlstate", None) == "53100":
            return True
        if isinstance(exc, sqlite3.OperationalError) and "database or disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


async def keep_running(
    name: str,
    step: Callable[[], Awaitable[bool]],
    *,
    stopping: asyncio.Event,
    health: Health,
    idle_seconds: float,
    wake: asyncio.Event | None = None,
) -> None:
    """Run ``step`` until ``stopping`` is set. ``step`` returns True when it
    did something (run it again at once) and False when idle (wait for
    ``wake`` or ``idle_seconds``). It never lets an exception end the loop."""
    health.started(name)
    failures = 0
    try:
        while not stopping.is_set():
            if wake is not None:
                wake.clear()
            try:
                # Each step runs in a copy of the loop's context: what a
                # failed step leaves in its context (a transaction that
                # could not begin was once left as the task's connection,
                # see gateway/core/asyncpg_engine.py) goes with it.
                busy = await asyncio.create_task(step())
            except Exception as exc:
                failures += 1
                health.failing(name, f"{type(exc).__name__}: {exc}"[:300])
                delay = min(BACKOFF_MOST, BACKOFF_FIRST * 2 ** (failures - 1))
                if failures == 1:  # once a streak: a database outage must not flood the log
                    log.error("%s cannot work (%s: %s); retrying every %.0fs at most until it can",
                              name, type(exc).__name__, exc, BACKOFF_MOST, exc_info=True)
                await _pause(stopping, None, delay)
                continue
            if failures:
                log.warning("%s works again after %d failed tries", name, failures)
                failures = 0
            health.ok(name)
            if not busy:
                await _pause(stopping, wake, idle_seconds)
    finally:
        health.stopped(name)


async def _pause(stopping: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Sleep up to ``seconds``; a stop (or a wake) cuts it short."""
    waiters = [asyncio.ensure_future(stopping.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
