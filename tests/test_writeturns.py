"""The runners' hot writes on SQLite take their turn at the write lock
through the kernel, as the admission intakes do (gateway/core/writeturns.py):
they wait while another process's intake commits, however long, instead of
sleeping in SQLite's busy handler and failing at its timeout."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3

import pytest

from gateway.core import db, writeturns
from gateway.inbound import queue as inbound
from gateway.outbound import outbox
from tests.test_leases import LEASE, NOW, _queue_inbound, _queue_outbound


async def _claim_inbound():
    await _queue_inbound(1)
    return lambda: inbound.claim(NOW, LEASE, "me")


async def _claim_outbound():
    await _queue_outbound(1)
    return lambda: outbox.claim_due(NOW, LEASE, "me", 4)


@pytest.mark.no_database  # a SQLite file of its own, whatever the pass
@pytest.mark.parametrize("claim", [_claim_inbound, _claim_outbound], ids=["inbound", "outbox"])
async def test_a_claim_waits_for_an_intake_holding_the_turn_longer_than_the_busy_timeout(tmp_path, claim):
    path = str(tmp_path / "t.db")
    async with db.opened(f"sqlite://{path}?busy_timeout=50"):
        claimed = await claim()
        # Another process's intake in the middle of its turn: it holds the
        # turn and the write lock for longer than SQLite's busy timeout.
        other = sqlite3.connect(path, isolation_level=None)
        turn = os.open(writeturns.turns_path(path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(turn, fcntl.LOCK_EX)
            other.execute("BEGIN IMMEDIATE")
            claiming = asyncio.ensure_future(claimed())
            await asyncio.sleep(0.3)
            assert not claiming.done()
            other.execute("COMMIT")
            fcntl.flock(turn, fcntl.LOCK_UN)
            # Not "database is locked" (the runner would back off and retry).
            assert await claiming
        finally:
            os.close(turn)
            other.close()


def _descriptors_on(path: str) -> int:
    """This process's open descriptors of the file at ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == path
        except OSError:  # the listing's own descriptor, gone by now
            pass
    return count


@pytest.mark.no_database  # a SQLite file of its own, whatever the pass
async def test_the_database_thread_opens_the_turns_file_once_and_closes_it_with_the_database(tmp_path):
    path = str(tmp_path / "t.db")
    turns = writeturns.turns_path(path)
    async with db.opened(f"sqlite://{path}"):
        for claim in (_claim_inbound, _claim_outbound, _claim_inbound):
            assert await (await claim())()
        # Kept open between turns, not opened and closed at each.
        assert _descriptors_on(turns) == 1
    # The database's thread ends after its connection closes; its descriptor goes with it.
    for _ in range(500):
        if _descriptors_on(turns) == 0:
            break
        await asyncio.sleep(0.01)
    assert _descriptors_on(turns) == 0
