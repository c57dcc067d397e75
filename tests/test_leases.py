"""Claims and leases on the queues, on the run's database: two claimers
never share a row; leases name their owner, are renewed, handed back on a
stop, and taken back at once from an owner that died on this machine."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from tortoise import connections

from gateway.core import db, rows
from gateway.core.health import Health, keep_running
from gateway.core.leases import LeaseKeeper
from gateway.core.models import (
    CLAIM_INDEX, OUTBOUND_CLAIM_INDEX, InboundMessage, InboundStatus, OutboundMessage, OutboundStatus,
)
from gateway.core.owner import Owner, dead_here, this_process
from gateway.inbound import queue as inbound
from gateway.outbound import outbox
from gateway.outbound.maildir import MaildirTransport
from tests.conftest import database_url

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=15)
KEY = bytes(32)


def test_an_owner_is_dead_when_its_process_is_gone_or_from_another_boot():
    me = this_process()
    assert str(Owner.parse(str(me))) == str(me)
    assert not dead_here(str(me), me)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = Owner(me.host, me.boot, child.pid, _start(child.pid))
        assert not dead_here(str(alive), me)
        assert dead_here(str(Owner(me.host, me.boot, child.pid, "1")), me)  # its pid, another start: reused
    finally:
        child.kill()
        child.wait()
    assert dead_here(str(alive), me)  # gone
    assert dead_here(str(Owner(me.host, "otherboot", os.getpid(), me.start)), me)
    assert not dead_here(str(Owner("elsewhere", me.boot, 1, "1")), me)  # other hosts' leases run out instead
    assert not dead_here("not an owner", me)


def _start(pid: int) -> str:
    return open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[19]


async def _queue_inbound(n: int) -> list[str]:
    ids = []
    for i in range(n):
        arrival = inbound.arrival(b"Subject: hi\r\n\r\nhello", master_key=KEY, mail_from="a@b.example",
                                  sender="a@b.example", firm_domain="b.example", rcpt_tos=["pay@b.example"],
                                  peer="127.0.0.1", trusted_peer=True, now=NOW + timedelta(seconds=i))
        await InboundMessage.create(**arrival.fields())
        await arrival.raw().save()
        ids.append(arrival.queue_id)
    return ids


async def _queue_outbound(n: int) -> None:
    for i in range(n):
        await OutboundMessage.create(kind="test", mail_from="a@b.example", rcpt_to=f"c{i}@d.example",
                                     sealed_message=b"x", next_attempt_at=NOW, created_at=NOW)


async def test_claimers_at_once_never_share_a_row(tmp_path):
    async with db.opened(database_url(tmp_path)):
        await _queue_inbound(30)
        await _queue_outbound(30)
        claims = await asyncio.gather(*(inbound.claim(NOW, LEASE, f"runner-{i}") for i in range(40)))
        got = [c.id for c in claims if c is not None]
        assert len(got) == 30 and len(set(got)) == 30
        batches = await asyncio.gather(*(outbox.claim_due(NOW, LEASE, f"runner-{i}", 4) for i in range(10)))
        ids = [item.id for batch in batches for item in batch]
        assert len(ids) == 30 and len(set(ids)) == 30
        assert {item.lease_owner for batch in batches for item in batch} <= {f"runner-{i}" for i in range(10)}
        assert not await outbox.claim_due(NOW, LEASE, "late", 4)  # all held
        assert len(await outbox.claim_due(NOW + LEASE + timedelta(seconds=1), LEASE, "late", 40)) == 30


async def test_the_claim_takes_the_oldest_claimable_message(tmp_path):
    async with db.opened(database_url(tmp_path)):
        ids = await _queue_inbound(6)  # received a second apart, oldest first
        await InboundMessage.filter(id=ids[0]).update(status=InboundStatus.DONE)
        await InboundMessage.filter(id=ids[1]).update(status=InboundStatus.PROCESSING, lease_until=NOW + LEASE)
        await InboundMessage.filter(id=ids[2]).update(lease_until=NOW + LEASE)  # a retry, not due yet
        await InboundMessage.filter(id=ids[4]).update(status=InboundStatus.PROCESSING, lease_until=NOW)  # ran out
        order = [(await inbound.claim(NOW + timedelta(seconds=1), LEASE, "me")) for _ in range(4)]
        assert [message.id if message else None for message in order] == [ids[3], ids[4], ids[5], None]


async def test_the_claim_on_sqlite_reads_its_index_not_the_queued_rows(tmp_path):
    # Every queued row holds its sealed message, and the columns the pick
    # needs come after it: read from the rows, each claim walked every
    # queued message's pages.
    async with db.opened(f"sqlite://{tmp_path}/claims.db"):
        await _queue_inbound(3)
        plan = await connections.get("default").execute_query_dict(
            "EXPLAIN QUERY PLAN " + inbound.PICK_ON_SQLITE, inbound.pick_values(NOW))
        assert any(f"COVERING INDEX {CLAIM_INDEX}" in step["detail"] for step in plan), plan


async def test_the_claim_on_sqlite_leaves_its_flush_to_the_next_durable_commit(tmp_path):
    # A claim lost to a power cut named a runner that stopped with it (the
    # message is claimed again); its own fsync held every statement of the
    # process behind it. Every other commit stays FULL.
    async with db.opened(f"sqlite://{tmp_path}/claims.db"):
        await _queue_inbound(1)
        client = rows.sqlite_client()
        statements: list[str] = []
        await rows.on_sqlite_thread(client, lambda connection: connection.set_trace_callback(statements.append))
        assert await inbound.claim(NOW, LEASE, "me") is not None
        await rows.on_sqlite_thread(client, lambda connection: connection.set_trace_callback(None))
        update = next(i for i, sql in enumerate(statements) if sql.startswith("UPDATE inbound_message"))
        assert [sql for sql in statements[:update] if sql.startswith("PRAGMA synchronous =")][-1] == \
            "PRAGMA synchronous = NORMAL"
        (setting,), = await rows.on_sqlite_thread(
            client, lambda connection: connection.execute("PRAGMA synchronous").fetchall())
        assert setting == 2  # FULL


async def test_the_outbox_claims_the_messages_due_oldest_first(tmp_path):
    async with db.opened(database_url(tmp_path)):
        made = [await OutboundMessage.create(kind="test", mail_from="a@b.example", rcpt_to=f"c{i}@d.example",
                                             sealed_message=b"x", next_attempt_at=NOW - timedelta(seconds=10 - i),
                                             created_at=NOW) for i in range(7)]
        ids = [row.id for row in made]
        await OutboundMessage.filter(id=ids[0]).update(status=OutboundStatus.SENT)
        await OutboundMessage.filter(id=ids[1]).update(lease_until=NOW + LEASE, lease_owner="other")  # held
        await OutboundMessage.filter(id=ids[2]).update(next_attempt_at=NOW + LEASE)  # a retry, not due yet
        await OutboundMessage.filter(id=ids[4]).update(lease_until=NOW - timedelta(seconds=1), lease_owner="gone")
        await OutboundMessage.filter(id=ids[6]).update(next_attempt_at=NOW - timedelta(seconds=10))  # oldest
        first, second = await outbox.claim_due(NOW, LEASE, "me", 3), await outbox.claim_due(NOW, LEASE, "me", 3)
        assert [item.id for item in first] == [ids[6], ids[3], ids[4]] and [item.id for item in second] == [ids[5]]
        assert {item.lease_owner for item in first + second} == {"me"}


async def test_the_outbox_claim_on_sqlite_reads_its_index_in_its_order_not_the_queued_rows(tmp_path):
    async with db.opened(f"sqlite://{tmp_path}/claims.db"):
        await _queue_outbound(3)
        plan = await connections.get("default").execute_query_dict(
            "EXPLAIN QUERY PLAN " + outbox.PICK_ON_SQLITE, outbox.pick_values(NOW, 20))
        details = [step["detail"] for step in plan]
        assert any(f"COVERING INDEX {OUTBOUND_CLAIM_INDEX}" in detail for detail in details), details
        assert not any("TEMP B-TREE" in detail for detail in details), details  # no sort: the index's order


async def test_leases_are_renewed_handed_back_and_taken_from_the_dead(tmp_path):
    async with db.opened(database_url(tmp_path)):
        ids = await _queue_inbound(3)
        await _queue_outbound(2)
        me = this_process()
        dead = str(Owner(me.host, "otherboot", 1, "1"))
        clock = lambda: NOW  # noqa: E731
        keeper = LeaseKeeper(me, LEASE, clock)
        mine = await inbound.claim(NOW, LEASE, str(me))
        theirs = await inbound.claim(NOW, LEASE, dead)
        await outbox.claim_due(NOW, LEASE, str(me), 1)
        await outbox.claim_due(NOW, LEASE, dead, 1)

        keeper.clock = lambda: NOW + timedelta(seconds=10)
        await keeper.renew()
        assert (await InboundMessage.get(id=mine.id)).lease_until == NOW + timedelta(seconds=25)
        assert (await InboundMessage.get(id=theirs.id)).lease_until == NOW + LEASE

        assert await keeper.reclaim_dead() == 2
        taken = await InboundMessage.get(id=theirs.id)
        assert (taken.status, taken.lease_owner, taken.lease_until, taken.attempts) == (
            InboundStatus.QUEUED, "", None, 1)  # its attempt counts
        assert await OutboundMessage.filter(lease_owner=dead).count() == 0

        assert await keeper.hand_back() == 2
        back = await InboundMessage.get(id=mine.id)
        assert (back.status, back.lease_owner, back.attempts) == (InboundStatus.QUEUED, "", 0)  # not counted
        assert await OutboundMessage.exclude(lease_owner="").count() == 0
        assert ids[2] not in {mine.id, theirs.id}


async def test_finishing_a_message_whose_lease_was_taken_commits_nothing(tmp_path):
    async with db.opened(database_url(tmp_path)):
        await _queue_inbound(1)
        slow = await inbound.claim(NOW, LEASE, "slow")
        fast = await inbound.claim(NOW + LEASE + timedelta(seconds=1), LEASE, "fast")
        assert fast.id == slow.id
        try:
            await inbound.finish(slow, "done twice?", NOW)
        except inbound.LeaseLost:
            pass
        else:
            raise AssertionError("the slow runner finished a message it no longer held")
        await inbound.finish(fast, "done", NOW)
        assert (await InboundMessage.get(id=fast.id)).outcome == "done"


async def test_the_maildir_writes_a_delivery_once_however_often_it_is_repeated(tmp_path):
    maildir = MaildirTransport(tmp_path / "outbox")
    message = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\nhello\r\n"
    first = await maildir.deliver(message, "a@b.example", "c@d.example", delivery_id="outbound-7")
    again = await maildir.deliver(message, "a@b.example", "c@d.example", delivery_id="outbound-7")
    assert first == "outbound-7.eml" and "delivered before" in again
    assert os.listdir(tmp_path / "outbox" / "new") == ["outbound-7.eml"]
    os.rename(tmp_path / "outbox" / "new" / "outbound-7.eml", tmp_path / "outbox" / "cur" / "outbound-7.eml:2,S")
    await maildir.deliver(message, "a@b.example", "c@d.example", delivery_id="outbound-7")  # read meanwhile
    assert os.listdir(tmp_path / "outbox" / "new") == []


def test_a_batch_into_the_maildir_writes_nothing_already_read(tmp_path):
    # The outbox's batch path lists cur/ once for the batch: a message a
    # reader moved there (":2,S" added) is not written again.
    maildir = MaildirTransport(tmp_path / "outbox")
    message = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\nhello\r\n"
    assert maildir.write_many([(message, "a@b.example", "c@d.example", "outbound-7")]) == ["outbound-7.eml"]
    os.rename(tmp_path / "outbox" / "new" / "outbound-7.eml", tmp_path / "outbox" / "cur" / "outbound-7.eml:2,S")
    notes = maildir.write_many([(message, "a@b.example", "c@d.example", f"outbound-{n}") for n in (7, 70, 8)])
    assert notes == ["outbound-7.eml (delivered before)", "outbound-70.eml", "outbound-8.eml"]
    assert sorted(os.listdir(tmp_path / "outbox" / "new")) == ["outbound-70.eml", "outbound-8.eml"]


async def test_a_failing_loop_logs_once_backs_off_and_recovers(caplog):
    health, stopping = Health(), asyncio.Event()
    calls = []

    async def step() -> bool:
        calls.append(1)
        if len(calls) <= 4:
            raise ConnectionRefusedError("database down")
        if len(calls) == 6:
            stopping.set()
        return True

    with caplog.at_level(logging.WARNING, logger="clienttrack.health"):
        task = asyncio.create_task(keep_running("queue-0", step, stopping=stopping, health=health, idle_seconds=1))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        assert health.problems() == {"queue-0": "failing: ConnectionRefusedError: database down"}
        await asyncio.wait_for(task, 10)
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]  # cannot work; works again
    assert "works again after 4 failed tries" in caplog.records[1].getMessage()
    assert health.problems() == {"queue-0": "stopped"}
