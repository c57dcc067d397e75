"""The queue runner: crashes are retried, then quarantined; a restart
resumes; nothing answered 250 is ever lost."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import aiosqlite
import pytest

from gateway import vault
from gateway.admission.intake import OrmIntake, Verdict
from gateway.core import datadir, db
from gateway.core.directory import seed_demo
from gateway.core.models import (
    Event, InboundMessage, InboundRaw, InboundStatus, OutboundMessage, PaymentRequest, SealedFile,
)
from gateway.core.paths import TEMPLATES_DIR
from gateway.deps import Deps
from gateway.inbound import queue as inbound
from gateway.inbound.runner import QueueRunner
from gateway.mail import context as mail_context
from gateway.outbound.compose import Composer
from gateway.service import running
from tests.conftest import GATEWAY, DEMO_STAFF, make_settings, request_mail, settled

START = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(tmp_path):
    settings = make_settings(tmp_path)
    datadir.prepare(settings.data_dir, settings.database)  # as the gateway makes it: private
    clock = Clock(START)
    async with db.opened(settings.database):
        await seed_demo(clock())
        deps = Deps(settings, vault.new_data_key(), clock, Composer(TEMPLATES_DIR / "email", hostname="gw.test"))
        yield deps, clock
        deps.crypto_pool.shutdown()


async def queue(raw: bytes, master_key: bytes, now: datetime) -> str:
    """Put a message from the demo staff in the inbound queue, as admission does."""
    arrival = inbound.arrival(raw, master_key=master_key, mail_from=DEMO_STAFF, sender=DEMO_STAFF,
                              firm_domain="demo.localhost", rcpt_tos=[GATEWAY], peer="127.0.0.1",
                              trusted_peer=True, now=now)
    assert await OrmIntake(sender_limit=1000, firm_limit=1000).admit(arrival) is Verdict.ADMITTED
    return arrival.queue_id


async def enqueue(deps, subject="Invoice 7 $10.00 to=jane@client.example pw=Blue42") -> str:
    return await queue(request_mail(subject).as_bytes(), deps.master_key, deps.clock())


async def tried_three_times(deps, clock, queue_id: str, error: str) -> QueueRunner:
    """A runner tries the message three times, 31 s apart (its retry is 30 s),
    each failing with ``error``; the message is then quarantined. The runner."""
    runner = QueueRunner(deps, retry_after=timedelta(seconds=30))
    for attempt in range(1, 4):
        assert await runner.process_next()
        queued = await InboundMessage.get(id=queue_id)
        assert queued.attempts == attempt
        assert error in queued.last_error
        clock.now += timedelta(seconds=31)
    assert queued.status is InboundStatus.QUARANTINED
    return runner


async def died_holding_it_three_times(deps, clock) -> None:
    """Three runners of another process claim the message in turn and each
    dies holding it (its lease runs out)."""
    lease = timedelta(seconds=deps.settings.lease_seconds)
    for _ in range(3):
        assert await inbound.claim(clock(), lease, "elsewhere/boot/1/1")
        clock.now += lease + timedelta(seconds=1)


def pool_calls(monkeypatch) -> list[str]:
    """The names of the functions given to asyncio.to_thread (asyncio's pool) from now on."""
    called: list[str] = []
    to_thread = asyncio.to_thread

    async def to_pool(fn, *args, **kwargs):
        called.append(fn.__name__)
        return await to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_pool)
    return called


async def test_a_message_that_crashes_three_times_is_quarantined_not_lost(world, monkeypatch):
    deps, clock = world
    queue_id = await enqueue(deps)

    async def crash(*args):
        raise RuntimeError("handler bug")

    monkeypatch.setattr("gateway.inbound.runner.create_request", crash)
    runner = await tried_three_times(deps, clock, queue_id, "handler bug")
    assert await InboundRaw.filter(id=queue_id).exists()  # kept for an operator
    assert await Event.filter(action="inbound.quarantined").count() == 1
    assert not await runner.process_next()


async def test_each_way_a_message_is_done_deletes_its_sealed_copy(world):
    deps, clock = world
    made = await enqueue(deps)
    command = await enqueue(deps, "help")
    refused = await enqueue(deps, "Invoice 1042 to=jane@client.example pw=Tulip77")  # no amount: a reply
    out_of_office = request_mail("Out of office")
    out_of_office["Auto-Submitted"] = "auto-replied"
    discarded = await queue(out_of_office.as_bytes(), deps.master_key, clock())
    assert await InboundRaw.all().count() == 4
    runner = QueueRunner(deps)
    while await runner.process_next():
        pass
    outcomes = dict(await InboundMessage.all().values_list("id", "outcome"))
    assert outcomes[made].startswith("request R") and outcomes[command] == "command help"
    assert outcomes[refused].startswith("rejected by") and outcomes[discarded].startswith("discarded by")
    assert not await InboundRaw.exists()


async def test_a_failed_attempt_waits_before_the_retry(world, monkeypatch):
    deps, clock = world
    await enqueue(deps)

    async def crash(*args):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr("gateway.inbound.runner.create_request", crash)
    runner = QueueRunner(deps, retry_after=timedelta(seconds=30))
    assert await runner.process_next()
    assert not await runner.process_next()  # not due yet
    monkeypatch.undo()
    clock.now += timedelta(seconds=31)
    assert await runner.process_next()
    assert await PaymentRequest.all().count() == 1


async def test_a_message_whose_runner_died_is_claimed_again_after_its_lease(world):
    deps, clock = world
    queue_id = await enqueue(deps)
    lease = timedelta(seconds=deps.settings.lease_seconds)
    died_holding = await inbound.claim(clock(), lease, "elsewhere/boot/1/1")  # that process dies here
    assert died_holding.id == queue_id
    runner = QueueRunner(deps)
    assert not await runner.process_next()  # still leased
    clock.now += lease + timedelta(seconds=1)
    assert await runner.process_next()
    assert (await InboundMessage.get(id=queue_id)).status is InboundStatus.DONE
    assert await PaymentRequest.all().count() == 1


async def test_runner_that_keeps_dying_quarantines_on_the_fourth_claim(world):
    deps, clock = world
    queue_id = await enqueue(deps)
    await died_holding_it_three_times(deps, clock)
    assert await QueueRunner(deps).process_next()
    assert (await InboundMessage.get(id=queue_id)).status is InboundStatus.QUARANTINED
    assert await InboundRaw.filter(id=queue_id).exists()  # kept for an operator


@pytest.mark.sqlite_only  # the hand-offs to the ORM's SQLite thread
async def test_a_request_is_one_trip_to_the_database_and_one_to_the_crypto_pool(world, monkeypatch):
    """The claim's hand-off to the database's thread also opens and parses
    the message and reads its directory (the firm, the sender on its
    staff, whether its Message-ID made a request already); the crypto
    pool's hand-off derives, seals, composes, stores the files and writes
    the request's rows on the crypto thread's own connection. Two trips a
    request in all, none to asyncio's pool. Before, parsing was a trip to
    the pool, the directory one more to the database's thread, and the
    request's write one more there after the crypto hand-off, each through
    the event loop."""
    deps, clock = world
    await enqueue(deps)
    trips: list[str] = []
    execute = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        trips.append(getattr(fn, "__name__", "?"))
        return await execute(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    pooled = pool_calls(monkeypatch)
    crypto: list[str] = []
    in_crypto_pool = deps.in_crypto_pool

    async def crypto_counted(fn, *args):
        crypto.append(getattr(fn, "__name__", "?"))
        return await in_crypto_pool(fn, *args)

    monkeypatch.setattr(deps, "in_crypto_pool", crypto_counted)
    assert await QueueRunner(deps).process_next()
    monkeypatch.undo()
    assert (trips, len(crypto), pooled) == (["_claimed_on_sqlite"], 1, []), (trips, crypto, pooled)
    assert await PaymentRequest.all().count() == 1


async def test_two_runners_making_one_message_twice_make_one_request(world, monkeypatch):
    """The same message queued twice, both claimed (and their directory
    read: no request yet) before either is made, worked on at once: one
    request and one client mail; the other is finished as a duplicate and
    its sealed files leave the store. The unique key decides, whichever
    connection writes."""
    deps, clock = world
    # On SQLite each directory is read in its claim's hand-off; elsewhere
    # each runner reads it while it works, and on a busy machine one runner
    # could make its request before the other had read: the other would
    # then see it there and be discarded by the duplicate rule, not reach
    # the unique key. Both read before either goes on.
    both_read = asyncio.Barrier(2)
    directory = mail_context._directory

    async def read_then_meet(*args):
        found = await directory(*args)
        await both_read.wait()
        return found

    monkeypatch.setattr(mail_context, "_directory", read_then_meet)
    raw = request_mail("Invoice 7 $10.00 to=jane@client.example pw=Blue42").as_bytes()
    await queue(raw, deps.master_key, clock())
    await queue(raw, deps.master_key, clock())
    runners = [QueueRunner(deps), QueueRunner(deps)]
    claimed = [await inbound.claim_and_read(clock(), timedelta(minutes=5), runner.owner, runner._read_ahead)
               for runner in runners]
    await asyncio.gather(*(runner._work_on(*held) for runner, held in zip(runners, claimed)))
    [request] = await PaymentRequest.all()
    outcomes = sorted(message.outcome for message in await InboundMessage.all())
    assert outcomes == ["duplicate", f"request R{request.id}"]
    assert await OutboundMessage.filter(kind="client-request").count() == 1
    named = {f.blob for f in await SealedFile.all()}
    root = deps.blobs.root
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert on_disk == named, "the duplicate's files went"


@pytest.mark.sqlite_only  # the hand-offs to the ORM's SQLite thread
async def test_a_message_over_the_read_ahead_bound_is_parsed_off_the_database_thread(world, monkeypatch):
    deps, clock = world
    await enqueue(deps)
    monkeypatch.setattr("gateway.inbound.runner.READ_AHEAD_MOST", 100)
    pooled = pool_calls(monkeypatch)
    assert await QueueRunner(deps).process_next()
    assert pooled == ["parse_split"]
    assert await PaymentRequest.all().count() == 1


async def test_a_message_that_cannot_be_parsed_is_retried_then_quarantined(world, monkeypatch):
    deps, clock = world
    queue_id = await enqueue(deps)

    def unreadable(raw):
        raise ValueError("parser bug")

    monkeypatch.setattr("gateway.inbound.runner.parse_split", unreadable)
    await tried_three_times(deps, clock, queue_id, "parser bug")
    assert await InboundRaw.filter(id=queue_id).exists()  # kept for an operator
    assert not await PaymentRequest.exists()


async def test_a_message_whose_runners_died_is_quarantined_without_being_parsed_again(world, monkeypatch):
    """Parsing may be what killed them (memory, a crash in C): the claim
    that quarantines the message does not parse it once more."""
    deps, clock = world
    queue_id = await enqueue(deps)
    await died_holding_it_three_times(deps, clock)
    parsed = []
    monkeypatch.setattr("gateway.inbound.runner.parse_split", parsed.append)
    assert await QueueRunner(deps).process_next()
    assert (await InboundMessage.get(id=queue_id)).status is InboundStatus.QUARANTINED
    assert parsed == []


async def test_a_restart_resumes_messages_accepted_before_the_stop(tmp_path):
    settings = make_settings(tmp_path)
    datadir.prepare(settings.data_dir, settings.database)  # as the gateway makes it: private
    master_key = vault.load_or_create_master_key(settings.master_key_path)
    async with db.opened(settings.database):
        await seed_demo(START)
        for n in range(3):
            raw = request_mail(f"Invoice {n} $10.00 to=jane@client.example pw=Blue42").as_bytes()
            await queue(raw, master_key, START)
    async with running(settings) as gw:
        await settled()
        assert await PaymentRequest.all().count() == 3
        assert gw.deps.settings.data_dir == settings.data_dir
