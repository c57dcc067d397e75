"""The runners' hot writes on SQLite take their turn at the write lock
through the kernel, as the admission intakes do (gateway/core/writeturns.py):
they wait while another process's intake commits, however long, instead of
sleeping in SQLite's busy handler and failing at its timeout."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys

import pytest

from gateway.admission import intake
from gateway.admission.intake import Verdict
from gateway.core import db, writeturns
from gateway.core.datadir import sqlite_path
from gateway.core.directory import seed_demo
from gateway.core.models import InboundMessage, InboundStatus, PaymentRequest
from gateway.inbound import queue as inbound
from gateway.inbound.runner import QueueRunner
from gateway.outbound import outbox
from gateway.outbound.maildir import MaildirTransport
from tests.test_intake import arrival
from tests.test_leases import LEASE, NOW, _queue_inbound, _queue_outbound
from tests.test_outbox import make_runner, queue_notice
from tests.conftest import writer_in_its_turn
from tests.test_runner import START, Clock, enqueue, world  # noqa: F401 (world: a fixture)


async def _claim_inbound(_folder=None):
    await _queue_inbound(1)
    return lambda: inbound.claim(NOW, LEASE, "me")


async def _claim_outbound(_folder=None):
    await _queue_outbound(1)
    return lambda: outbox.claim_due(NOW, LEASE, "me", 4)


async def _deliver_into_the_maildir(folder):
    # The Maildir's batch claims on the outbox's own thread and connection.
    clock = Clock(NOW)
    await queue_notice(clock)
    runner = make_runner(MaildirTransport(folder / "outbox"), clock, folder)

    async def deliver() -> int:
        try:
            return await runner.deliver_due()
        finally:
            await runner.close()
    return deliver


@pytest.mark.no_database  # a SQLite file of its own, whatever the pass
@pytest.mark.parametrize("claim", [_claim_inbound, _claim_outbound, _deliver_into_the_maildir],
                         ids=["inbound", "outbox", "outbox into the maildir"])
async def test_a_claim_waits_for_an_intake_holding_the_turn_longer_than_the_busy_timeout(tmp_path, claim):
    path = str(tmp_path / "t.db")
    async with db.opened(f"sqlite://{path}?busy_timeout=50"):
        claimed = await claim(tmp_path)
        # Another process's intake in the middle of its turn: it holds the
        # turn and the write lock for longer than SQLite's busy timeout.
        with writer_in_its_turn(path) as other:
            claiming = asyncio.ensure_future(claimed())
            await asyncio.sleep(0.3)
            assert not claiming.done()
            other.done()
            # Not "database is locked" (the runner would back off and retry).
            assert await claiming


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


HOLD_THE_TURN = """
import fcntl, os, sys
turns = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(turns, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()  # hangs, holding the turn, until told
"""


class HungWriter:
    """Another process that takes the write turn and hangs holding it (not
    dying: the kernel would let go of the turn then)."""

    def __init__(self, database_path: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", HOLD_THE_TURN, writeturns.turns_path(database_path)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == "held\n"
        self.pid = self.process.pid

    def let_go(self) -> None:
        if self.process.poll() is None:
            self.process.communicate("\n", timeout=30)


@pytest.fixture
def bounded(monkeypatch):
    """Waits for a turn end after a fraction of a second (WAIT_MOST is 30 s)."""
    monkeypatch.setattr(writeturns, "WAIT_MOST", 0.3)


def turn_is_free(database_path: str) -> bool:
    """Whether a writer of a third process could take the turn now."""
    turns = writeturns.open_turns(database_path)
    try:
        fcntl.flock(turns, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(turns)


@pytest.mark.no_database
def test_a_turn_held_by_a_hung_process_is_given_up_on_with_who_holds_it_and_taken_once_free(tmp_path, caplog):
    path = str(tmp_path / "t.db")
    turns = writeturns.Turns(path, wait_most=0.3)
    hung = HungWriter(path)
    try:
        with pytest.raises(writeturns.TurnNotGiven, match=f"held by process {hung.pid} "):
            with turns.turn():
                raise AssertionError("given the turn a hung process holds")
        assert f"held by process {hung.pid} " in caplog.text  # logged while waiting
        # Given up on, twice: no turn taken meanwhile is kept for nobody.
        with pytest.raises(writeturns.TurnNotGiven):
            with turns.turn():
                pass
        hung.let_go()
        with turns.turn():
            assert not turn_is_free(path)
        assert turn_is_free(path)
        for _ in range(3):
            with turns.turn():
                assert not turn_is_free(path)
            assert turn_is_free(path)
    finally:
        hung.let_go()
        turns.close()


@pytest.mark.no_database
async def test_an_intake_fails_its_batch_rather_than_wait_for_good_and_admits_once_the_turn_is_free(
        tmp_path, bounded):
    path = str(tmp_path / "t.db")
    url = f"sqlite://{path}"
    async with db.opened(url):
        await seed_demo(START)
        taking = await intake.opened(url, 100, 1000)
        hung = HungWriter(path)
        try:
            # Raised to the SMTP session, which answers 451: the sending server tries again.
            with pytest.raises(writeturns.TurnNotGiven):
                await taking.admit(arrival())
            hung.let_go()
            assert await taking.admit(arrival()) is Verdict.ADMITTED
        finally:
            hung.let_go()
            await taking.close()
        assert await InboundMessage.all().count() == 1


@pytest.mark.sqlite_only  # the write turn is SQLite's
async def test_a_runner_whose_write_waits_on_a_hung_process_fails_the_step_and_makes_the_request_once_free(
        world, bounded):
    deps, clock = world
    queue_id = await enqueue(deps)
    runner = QueueRunner(deps)
    path = sqlite_path(deps.settings.database)
    hung: list[HungWriter] = []
    read_ahead = runner._read_ahead

    def claimed_then_hung(connection, queued):
        # Right after the claim committed (its turn let go of), another
        # process takes the turn and hangs: the request's write waits on it.
        if not hung:
            hung.append(HungWriter(path))
        return read_ahead(connection, queued)

    runner._read_ahead = claimed_then_hung
    try:
        # The step fails (an outage: the runner backs off), it does not hang.
        with pytest.raises(writeturns.TurnNotGiven):
            await runner.process_next()
        assert await PaymentRequest.all().count() == 0
        hung[0].let_go()
        # The message is handed back and made into its request, once.
        assert await runner.process_next()
        assert not await runner.process_next()
    finally:
        for writer in hung:
            writer.let_go()
    assert await PaymentRequest.all().count() == 1
    assert (await InboundMessage.get(id=queue_id)).status is InboundStatus.DONE
