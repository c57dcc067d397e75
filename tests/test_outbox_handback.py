"""A claimed outbound mail whose delivery could not finish is delivered
exactly once afterwards: given back by the runner that holds it, or taken
back by another once the holder died and its lease ran out.

The in-between states are set up through the outbox itself: the mail is
written into the Maildir and then its mark as sent cannot be recorded,
because another process took the database's write turn and hangs
(tests/test_writeturns.py HungWriter; the wait for the turn is bounded,
core/writeturns.py); or a runner claimed it and died before writing it."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.core import writeturns
from gateway.core.datadir import sqlite_path
from gateway.core.models import OutboundMessage, OutboundStatus
from gateway.outbound import outbox
from gateway.outbound.maildir import MaildirTransport
from tests.conftest import database_url
from tests.test_outbox import START, make_runner, queue_notice, store  # noqa: F401 (store: a fixture)
from tests.test_runner import Clock
from tests.test_writeturns import HungWriter, bounded  # noqa: F401 (bounded: a fixture)

LEASE = timedelta(seconds=15)


class HungBeforeTheMark(MaildirTransport):
    """The Maildir, with another process taking the write turn and hanging
    right after the outbox's first batch is written: that batch's mark as
    sent waits on it, and fails."""

    def __init__(self, path: Path, database_path: str) -> None:
        super().__init__(path)
        self.database_path = database_path
        self.hung: list[HungWriter] = []

    def write_many(self, messages):
        written = super().write_many(messages)
        if not self.hung:
            self.hung.append(HungWriter(self.database_path))
        return written

    def let_go(self) -> None:
        for writer in self.hung:
            writer.let_go()


def delivered(maildir: Path) -> list[str]:
    """The files in the Maildir: in new/, and any left in tmp/."""
    return sorted(os.listdir(maildir / "new")) + sorted(os.listdir(maildir / "tmp"))


def runner_of(owner: str, transport, clock, data_dir: Path) -> outbox.OutboxRunner:
    runner = make_runner(transport, clock, data_dir)
    runner.owner = owner
    return runner


async def written_but_not_marked(tmp_path: Path, clock: Clock) -> tuple[int, HungBeforeTheMark, outbox.OutboxRunner]:
    """A mail runner "A" claimed and wrote into the Maildir, whose mark as
    sent failed: (its id, the transport, runner A)."""
    item, _ = await queue_notice(clock)
    transport = HungBeforeTheMark(tmp_path / "outbox", sqlite_path(database_url(tmp_path)))
    holder = runner_of("A", transport, clock, tmp_path)
    with pytest.raises(writeturns.TurnNotGiven):
        await holder.deliver_due()
    row = await OutboundMessage.get(id=item.id)
    assert (row.status, row.lease_owner) == (OutboundStatus.QUEUED, "A")
    assert delivered(tmp_path / "outbox") == [f"outbound-{item.id}.eml"]
    return item.id, transport, holder


async def assert_delivered_once(tmp_path: Path, mail_id: int) -> None:
    row = await OutboundMessage.get(id=mail_id)
    assert (row.status, row.attempts) == (OutboundStatus.SENT, 1)
    assert delivered(tmp_path / "outbox") == [f"outbound-{mail_id}.eml"]


@pytest.mark.sqlite_only  # the write turn is SQLite's
async def test_a_mail_written_whose_mark_failed_is_given_back_and_delivered_once(store, tmp_path, bounded):
    clock = Clock(START)
    mail_id, transport, holder = await written_but_not_marked(tmp_path, clock)
    transport.let_go()
    # The holder's next batch gives it back first, claims it again and finds it written.
    assert await holder.deliver_due() == 1
    await assert_delivered_once(tmp_path, mail_id)
    assert await holder.deliver_due() == 0
    await assert_delivered_once(tmp_path, mail_id)


@pytest.mark.sqlite_only
async def test_a_mail_written_by_a_runner_that_died_before_its_mark_is_taken_back_and_delivered_once(
        store, tmp_path, bounded):
    clock = Clock(START)
    mail_id, transport, _ = await written_but_not_marked(tmp_path, clock)
    transport.let_go()  # and runner A is gone, its mail still leased to it
    taker = runner_of("B", MaildirTransport(tmp_path / "outbox"), clock, tmp_path)
    assert await taker.deliver_due() == 0  # A's lease still runs
    clock.now += LEASE + timedelta(seconds=1)
    assert await taker.deliver_due() == 1
    await assert_delivered_once(tmp_path, mail_id)
    assert await taker.deliver_due() == 0


async def test_a_mail_claimed_by_a_runner_that_died_before_writing_it_is_taken_back_and_delivered_once(
        store, tmp_path):
    clock = Clock(START)
    item, _ = await queue_notice(clock)
    [claimed] = await outbox.claim_due(clock(), LEASE, "A", 10)  # and A dies
    assert claimed.id == item.id
    taker = runner_of("B", MaildirTransport(tmp_path / "outbox"), clock, tmp_path)
    assert await taker.deliver_due() == 0
    clock.now += LEASE + timedelta(seconds=1)
    assert await taker.deliver_due() == 1
    await assert_delivered_once(tmp_path, item.id)
    assert await taker.deliver_due() == 0
