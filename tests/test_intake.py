"""Admitting into the inbound queue, the same on both intakes: SQLite's own
thread and connection (always on SQLite), and the ORM's connection (what
PostgreSQL uses; on the run's database)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from gateway import vault
from gateway.admission import intake
from gateway.admission.intake import Intake, OrmIntake, Verdict
from gateway.core import db
from gateway.core.directory import seed_demo
from gateway.core.models import AcceptedMessageId, Firm, InboundMessage, InboundRaw, InboundStatus, Staff
from gateway.inbound import queue as inbound
from tests.conftest import database_url, writer_in_its_turn
from tests.test_runner import START

KEY = vault.new_data_key()
STAFF, OTHER_STAFF = "staff@demo.localhost", "boss@demo.localhost"


def arrival(sender: str = STAFF, minutes_ago: float = 0, raw: bytes = b"Subject: hi\r\n\r\nhello",
            message_key: str = "", firm: str = "demo.localhost") -> inbound.Arrival:
    return inbound.arrival(raw, master_key=KEY, mail_from=sender, sender=sender, firm_domain=firm,
                           rcpt_tos=[f"pay@{firm}"], peer="192.0.2.7", trusted_peer=False,
                           now=START - timedelta(minutes=minutes_ago), message_key=message_key)


@pytest.fixture(params=["sqlite", "orm"])
async def make_intake(request, tmp_path) -> AsyncIterator[Callable]:
    url = f"sqlite://{tmp_path}/t.db" if request.param == "sqlite" else database_url(tmp_path)
    made: list[Intake] = []

    async def make(sender_limit: int = 100, firm_limit: int = 1000) -> Intake:
        if request.param == "sqlite":
            made.append(await intake.opened(url, sender_limit, firm_limit))
        else:
            made.append(OrmIntake(sender_limit, firm_limit))
        return made[-1]

    async with db.opened(url):
        await seed_demo(START)
        await db_staff(OTHER_STAFF)
        yield make
        for each in made:
            await each.close()


async def db_staff(email: str) -> None:
    await Staff.create(firm=await Firm.get(domain="demo.localhost"), email=email, created_at=START)


async def test_messages_arriving_together_are_all_stored_as_the_orm_reads_them(make_intake):
    taking = await make_intake()
    arrivals = [arrival(minutes_ago=n / 10) for n in range(30)]
    verdicts = await asyncio.gather(*(taking.admit(a) for a in arrivals))
    assert verdicts == [Verdict.ADMITTED] * 30
    for sent in arrivals:
        stored = await InboundMessage.get(id=sent.queue_id)
        assert stored.status is InboundStatus.QUEUED and stored.attempts == 0
        assert (stored.sender, stored.firm_domain, stored.rcpt_tos) == (STAFF, "demo.localhost", ["pay@demo.localhost"])
        assert (stored.peer, stored.trusted_peer, stored.size) == ("192.0.2.7", False, len(b"Subject: hi\r\n\r\nhello"))
        assert stored.received_at == sent.received_at
        assert inbound.open_raw(await InboundRaw.get(id=sent.queue_id), KEY) == b"Subject: hi\r\n\r\nhello"
    # The runners' claim finds them, oldest first, with the message.
    claimed = await inbound.claim(START, timedelta(minutes=5), "test-runner")
    assert claimed is not None and claimed.id == arrivals[-1].queue_id
    assert inbound.open_raw(claimed, KEY) == b"Subject: hi\r\n\r\nhello"


async def test_a_sender_who_is_not_staff_is_refused_and_nothing_is_stored(make_intake):
    taking = await make_intake()
    assert await taking.admit(arrival("stranger@demo.localhost")) is Verdict.NOT_STAFF
    assert await InboundMessage.all().count() == 0


async def test_the_hourly_limits_hold_exactly_when_messages_arrive_at_once(make_intake):
    taking = await make_intake(sender_limit=3, firm_limit=5)
    # An hour and a minute ago: no longer counted.
    assert await taking.admit(arrival(minutes_ago=61)) is Verdict.ADMITTED
    mine = await asyncio.gather(*(taking.admit(arrival()) for _ in range(5)))
    assert sorted(v.value for v in mine) == sorted([Verdict.ADMITTED.value] * 3 + [Verdict.SENDER_LIMIT.value] * 2)
    others = await asyncio.gather(*(taking.admit(arrival(OTHER_STAFF)) for _ in range(3)))
    assert sorted(v.value for v in others) == sorted([Verdict.ADMITTED.value] * 2 + [Verdict.FIRM_LIMIT.value])
    assert await InboundMessage.all().count() == 1 + 3 + 2


async def test_a_batch_that_cannot_commit_fails_every_waiter_keeps_nothing_and_the_next_one_works(make_intake):
    taking = await make_intake()
    first = arrival()
    await taking.admit(first)
    clash = dataclasses.replace(first)  # the same queue id again: the insert fails
    results = await asyncio.gather(taking.admit(arrival()), taking.admit(clash), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert await InboundMessage.all().count() == 1
    assert await taking.admit(arrival()) is Verdict.ADMITTED
    assert await InboundMessage.all().count() == 2


async def test_two_senders_arriving_together_share_the_firms_limit(make_intake):
    taking = await make_intake(sender_limit=3, firm_limit=4)
    arrivals = [arrival() for _ in range(3)] + [arrival(OTHER_STAFF) for _ in range(3)]
    verdicts = await asyncio.gather(*(taking.admit(a) for a in arrivals))
    assert verdicts == [Verdict.ADMITTED] * 4 + [Verdict.FIRM_LIMIT] * 2
    assert await InboundMessage.filter(sender=OTHER_STAFF).count() == 1
    # The counts were kept: the next message is over a limit, its sender's or the firm's.
    assert await taking.admit(arrival()) is Verdict.SENDER_LIMIT
    assert await taking.admit(arrival(OTHER_STAFF)) is Verdict.FIRM_LIMIT


async def test_a_message_id_is_admitted_once_per_firm_even_in_one_batch(make_intake):
    taking = await make_intake()
    first = await asyncio.gather(*(taking.admit(arrival(message_key="a" * 64)) for _ in range(3)),
                                 taking.admit(arrival(message_key="b" * 64)), taking.admit(arrival()))
    assert first == [Verdict.ADMITTED, Verdict.REPLAYED, Verdict.REPLAYED, Verdict.ADMITTED, Verdict.ADMITTED]
    # Later, and from another sender of the firm: still a replay; no key (--demo's trust): not checked.
    assert await taking.admit(arrival(OTHER_STAFF, message_key="a" * 64)) is Verdict.REPLAYED
    assert await taking.admit(arrival()) is Verdict.ADMITTED
    assert await AcceptedMessageId.filter(firm_domain="demo.localhost").count() == 2
    assert await InboundMessage.all().count() == 4
    # Another firm may take the same Message-ID.
    other = await Firm.create(domain="other.example", name="Other", created_at=START)
    await Staff.create(firm=other, email=STAFF, created_at=START)
    assert await taking.admit(arrival(message_key="a" * 64, firm="other.example")) is Verdict.ADMITTED


async def test_a_replay_does_not_count_against_the_hourly_limit(make_intake):
    taking = await make_intake(sender_limit=2)
    assert await taking.admit(arrival(message_key="a" * 64)) is Verdict.ADMITTED
    for _ in range(3):
        assert await taking.admit(arrival(message_key="a" * 64)) is Verdict.REPLAYED
    assert await taking.admit(arrival()) is Verdict.ADMITTED


@pytest.mark.no_database  # a SQLite file of its own, whatever the pass
async def test_an_intake_waits_its_turn_while_another_process_admits_and_then_admits_all_that_came(tmp_path):
    path = str(tmp_path / "t.db")
    url = f"sqlite://{path}?busy_timeout=50"
    async with db.opened(url):
        await seed_demo(START)
        taking = await intake.opened(url, 100, 1000)
        # Another front process in the middle of its turn, for longer than
        # SQLite's busy timeout: its intake holds the turn and the write lock.
        try:
            with writer_in_its_turn(path) as other:
                first = asyncio.ensure_future(taking.admit(arrival()))
                await asyncio.sleep(0.2)
                later = asyncio.ensure_future(taking.admit(arrival()))
                await asyncio.sleep(0.1)
                assert not first.done() and not later.done()
                other.done()
                # Neither got "database is locked" (a 451 to the client).
                assert await asyncio.gather(first, later) == [Verdict.ADMITTED] * 2
        finally:
            await taking.close()
        assert await InboundMessage.all().count() == 2


ADMIT_IN_A_PROCESS = """
import asyncio, sys
from tests.test_intake import arrival
from gateway.admission import intake
async def main(url, count):
    taking = await intake.opened(url, 30, 1000)
    verdicts = await asyncio.gather(*(taking.admit(arrival()) for _ in range(count)))
    await taking.close()
    print(sum(v is intake.Verdict.ADMITTED for v in verdicts))
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.no_database
async def test_two_front_processes_admit_into_one_file_and_the_hourly_limit_holds_across_them(tmp_path):
    url = f"sqlite://{tmp_path / 't.db'}"
    async with db.opened(url):
        await seed_demo(START)
        fronts = [subprocess.Popen([sys.executable, "-c", ADMIT_IN_A_PROCESS, url, "25"], stdout=subprocess.PIPE,
                                   cwd=Path(__file__).resolve().parents[1]) for _ in range(2)]
        admitted = [int(front.communicate(timeout=60)[0]) for front in fronts]
        assert all(front.returncode == 0 for front in fronts)
        # The sender's limit is 30: 50 offered between the two, 30 admitted.
        assert sum(admitted) == 30
        assert await InboundMessage.all().count() == 30
