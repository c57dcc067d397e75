"""The outbound queue against a real SMTP relay on loopback: retries with
backoff, gives up on a permanent failure and tells the staff member."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.smtp import SMTP

from gateway import vault
from gateway.core import db, rows, sqlite_threads
from gateway.core.health import Health
from gateway.core.leases import LeaseKeeper
from gateway.core.models import OutboundMessage, OutboundStatus
from gateway.core.owner import Owner, this_process
from gateway.core.paths import TEMPLATES_DIR
from gateway.outbound import maildir, outbox
from gateway.outbound.compose import Composer, to_bytes
from gateway.outbound.maildir import MaildirTransport
from gateway.outbound.relay import RelayTransport
from gateway.outbound.dkimkeys import KeyStore
from gateway.outbound.signing import Signer
from gateway.vault import verp
from tests.test_runner import Clock
from tests.conftest import database_url, writer_in_its_turn

START = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
MASTER = vault.new_data_key()
LEASE = timedelta(seconds=15)


class Relay:
    """A relay that answers RCPT from a script of replies, then 250."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.delivered: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.replies:
            return self.replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.delivered.append(envelope.original_content)
        return "250 2.0.0 queued"


@pytest.fixture
async def store(tmp_path):
    async with db.opened(database_url(tmp_path)):
        yield


async def start_relay(handler: Relay) -> tuple[asyncio.AbstractServer, int]:
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, hostname="relay.test"), "127.0.0.1", 0
    )
    return server, server.sockets[0].getsockname()[1]


def make_runner(transport, clock, data_dir, owner="test-runner") -> outbox.OutboxRunner:
    return outbox.OutboxRunner(
        transport=transport, composer=Composer(TEMPLATES_DIR / "email", hostname="gw.test"),
        master_key=MASTER, clock=clock, wake=asyncio.Event(), max_attempts=4, retry_base_seconds=60,
        owner=owner, lease=LEASE,
        signer=Signer(KeyStore(data_dir), clock),
    )


async def queue_notice(clock, to="jane@client.example", notify="staff@demo.localhost"):
    composer = Composer(TEMPLATES_DIR / "email", hostname="gw.test")
    message = composer.notice(firm_domain="demo.localhost", to=to, subject="Your request",
                              paragraphs=["Hello."], now=clock())
    return await outbox.enqueue(message, master_key=MASTER, kind="client-request", now=clock(),
                                notify_on_failure=notify), message


async def test_temporary_failures_back_off_then_deliver(store, tmp_path):
    handler = Relay(["451 4.3.0 try later", "451 4.3.0 try later"])
    server, port = await start_relay(handler)
    clock = Clock(START)
    runner = make_runner(RelayTransport(f"smtp://127.0.0.1:{port}", hostname="gw.test"), clock, tmp_path)
    item, message = await queue_notice(clock)
    delays = []
    for _ in range(2):
        await runner.deliver_due()
        item = await OutboundMessage.get(id=item.id)
        assert item.status is OutboundStatus.QUEUED and "451" in item.last_error
        delays.append((item.next_attempt_at - clock()).total_seconds())
        assert not await runner.deliver_due()  # not due yet
        clock.now = item.next_attempt_at
    assert delays[1] > delays[0] * 1.5  # exponential
    await runner.deliver_due()
    item = await OutboundMessage.get(id=item.id)
    assert item.status is OutboundStatus.SENT and item.sealed_message is None
    # Signed on the way out (tests/test_signing.py checks the signature).
    [delivered] = handler.delivered
    assert delivered.startswith(b"DKIM-Signature: ") and delivered.endswith(to_bytes(message))
    server.close()


async def test_a_permanent_failure_tells_the_staff_member(store, tmp_path):
    handler = Relay(["550 5.1.1 no such user"])
    server, port = await start_relay(handler)
    clock = Clock(START)
    runner = make_runner(RelayTransport(f"smtp://127.0.0.1:{port}", hostname="gw.test"), clock, tmp_path)
    item, _ = await queue_notice(clock)
    await runner.deliver_due()
    item = await OutboundMessage.get(id=item.id)
    assert item.status is OutboundStatus.FAILED and "550" in item.last_error
    notice = await OutboundMessage.get(kind=outbox.FAILURE_NOTICE)
    assert notice.rcpt_to == "staff@demo.localhost"
    await runner.deliver_due()
    assert "jane@client.example" in handler.delivered[0].decode()
    server.close()


async def test_a_failure_notice_that_fails_is_not_reported_again(store, tmp_path):
    handler = Relay(["550 nope", "550 nope"])
    server, port = await start_relay(handler)
    clock = Clock(START)
    runner = make_runner(RelayTransport(f"smtp://127.0.0.1:{port}", hostname="gw.test"), clock, tmp_path)
    await queue_notice(clock)
    await runner.deliver_due()
    await runner.deliver_due()
    assert await OutboundMessage.filter(status=OutboundStatus.FAILED).count() == 2
    assert await OutboundMessage.all().count() == 2
    server.close()


async def test_running_out_of_attempts_gives_up(store, tmp_path):
    clock = Clock(START)
    runner = make_runner(RelayTransport("smtp://127.0.0.1:9?timeout=1", hostname="gw.test"), clock, tmp_path)
    item, _ = await queue_notice(clock, notify="")
    for _ in range(4):
        await runner.deliver_due()
        clock.now += timedelta(days=1)
    item = await OutboundMessage.get(id=item.id)
    assert item.status is OutboundStatus.FAILED and item.attempts == 4
    assert "gave up" in item.last_error


async def test_maildir_delivery_writes_the_bounce_address_the_signature_and_the_exact_message(store, tmp_path):
    clock = Clock(START)
    runner = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path)
    item, message = await queue_notice(clock)
    await runner.deliver_due()
    [path] = (tmp_path / "outbox" / "new").iterdir()
    return_path, signature, rest = path.read_bytes().split(b"\r\n", 2)
    assert return_path == f"Return-Path: <{verp.Verp(MASTER).address(item.id, 'demo.localhost')}>".encode()
    assert signature.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=demo.localhost;")
    assert rest.endswith(to_bytes(message))


async def test_each_message_has_a_bounce_address_of_its_own_on_the_wire(store, tmp_path):
    handler = Relay([])
    server, port = await start_relay(handler)
    senders = []
    clock = Clock(START)
    runner = make_runner(RelayTransport(f"smtp://127.0.0.1:{port}", hostname="gw.test"), clock, tmp_path)
    first, _ = await queue_notice(clock)
    second, _ = await queue_notice(clock)
    original = handler.handle_DATA

    async def record(server_, session, envelope):
        senders.append(envelope.mail_from)
        return await original(server_, session, envelope)

    handler.handle_DATA = record
    await runner.deliver_due()
    address = verp.Verp(MASTER).address
    assert senders == [address(first.id, "demo.localhost"), address(second.id, "demo.localhost")]
    assert senders[0].startswith(f"bounce+{first.id}.") and senders[0] != senders[1]
    server.close()


async def test_nothing_is_ever_queued_for_a_bounce_address(store):
    clock = Clock(START)
    with pytest.raises(ValueError, match="bounce address"):
        await queue_notice(clock, to=verp.Verp(MASTER).address(7, "demo.localhost"))
    assert await OutboundMessage.all().count() == 0


async def test_a_maildir_batch_is_written_then_fsynced_once_then_marked_sent_each_once(store, tmp_path, monkeypatch):
    clock = Clock(START)
    transport = MaildirTransport(tmp_path / "outbox")
    runner = make_runner(transport, clock, tmp_path)
    queued = [(await queue_notice(clock, to=f"client{n}@client.example"))[0] for n in range(3)]
    # The first was delivered before (a runner died before marking it sent).
    await transport.deliver(b"Subject: x\r\n\r\nx\r\n", "a@demo.localhost", "client0@client.example",
                            delivery_id=f"outbound-{queued[0].id}")
    synced = []
    real_fsync_dir = maildir.fsync_dir
    monkeypatch.setattr(maildir, "fsync_dir", lambda path: (synced.append(Path(path)), real_fsync_dir(path)))
    assert await runner.deliver_due()
    assert synced == [tmp_path / "outbox" / "new"]  # once for the batch
    names = sorted(path.name for path in (tmp_path / "outbox" / "new").iterdir())
    assert names == sorted(f"outbound-{item.id}.eml" for item in queued)
    for item in queued:
        row = await OutboundMessage.get(id=item.id)
        assert (row.status, row.attempts, row.sent_at, row.sealed_message, row.lease_owner, row.lease_until) == (
            OutboundStatus.SENT, 1, START, None, "", None)
        assert row.last_error == f"outbound-{item.id}.eml" + (" (delivered before)" if item is queued[0] else "")
    assert not await runner.deliver_due()
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 3


def outbox_connections(monkeypatch) -> list[tuple[sqlite3.Connection, list[str]]]:
    """Each connection to SQLite the outbox opens of its own from now on
    (gateway/core/sqlite_threads.py), with the statements run on it."""
    opened: list[tuple[sqlite3.Connection, list[str]]] = []
    real_connect = sqlite_threads.connect

    def connect(path, pragmas):
        connection, statements = real_connect(path, pragmas), []
        connection.set_trace_callback(statements.append)
        opened.append((connection, statements))
        return connection

    monkeypatch.setattr(sqlite_threads, "connect", connect)
    return opened


def pragma(connection: sqlite3.Connection, name: str) -> int:
    (setting,), = connection.execute(f"PRAGMA {name}").fetchall()
    return setting


async def orm_pragma(name: str) -> int:
    return await rows.on_sqlite_thread(rows.sqlite_client(), pragma, name)


@pytest.mark.sqlite_only  # SQLite's synchronous setting
async def test_a_maildir_batch_is_marked_sent_without_a_flush_of_its_own(store, tmp_path, monkeypatch):
    # Its files are in the Maildir for good before the mark, and a mark lost
    # to a power cut finds them again by their delivery ids (the test above:
    # "delivered before"); its own fsync held every statement of the process
    # behind it. The outbox's own connection runs only its claims and marks;
    # every other commit (the ORM's connection's) stays FULL.
    opened = outbox_connections(monkeypatch)
    clock = Clock(START)
    runner = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path)
    queued = [(await queue_notice(clock, to=f"client{n}@client.example"))[0] for n in range(2)]
    assert await runner.deliver_due() == 2
    [(connection, statements)] = opened
    assert len([sql for sql in statements if sql.startswith("UPDATE outbound_message SET status")]) == 2
    assert pragma(connection, "synchronous") == 1  # NORMAL
    assert await orm_pragma("synchronous") == 2  # FULL
    assert [row.status for row in await OutboundMessage.filter(id__in=[item.id for item in queued])] == \
        [OutboundStatus.SENT] * 2
    await runner.close()


@pytest.mark.sqlite_only  # SQLite's own pages: PostgreSQL keeps a large value out of line (TOAST)
async def test_claiming_and_marking_sent_free_the_sealed_message_without_zeroing_it(store, tmp_path, monkeypatch):
    # The claim rewrites each row (the lease makes it longer), the mark drops
    # the sealed message: the pages they free hold only its ciphertext and
    # the row's later columns, and zeroing them wrote them to the log again.
    opened = outbox_connections(monkeypatch)
    client = rows.sqlite_client()
    clock = Clock(START)
    runner = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path)
    composer = Composer(TEMPLATES_DIR / "email", hostname="gw.test")
    message = composer.notice(firm_domain="demo.localhost", to="jane@client.example", subject="Your scan",
                              paragraphs=["Attached."], now=clock())
    message.add_attachment(bytes(range(256)) * 400, maintype="application", subtype="pdf", filename="scan.pdf")
    item = await outbox.enqueue(message, master_key=MASTER, kind="client-request", now=clock())
    setting = await orm_pragma("secure_delete")
    await rows.on_sqlite_thread(client, lambda connection: connection.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    assert await runner.deliver_due() == 1
    written = Path(f"{client.filename}-wal").stat().st_size
    # The claim writes the sealed message's pages anew (~35 for 140 KB);
    # zeroing the old ones, and the mark's, wrote twice as many again.
    assert written < 1.5 * len(item.sealed_message)
    assert (await OutboundMessage.get(id=item.id)).status is OutboundStatus.SENT
    [(connection, _)] = opened
    assert pragma(connection, "secure_delete") == 2  # FAST: the outbox's connection runs only its claims and marks
    assert await orm_pragma("secure_delete") == setting  # every other statement zeroes what it frees as before
    await runner.close()


@pytest.mark.sqlite_only  # the outbox's own thread and connection
async def test_a_maildir_batch_is_one_trip_off_the_event_loop(store, tmp_path, monkeypatch):
    # Claimed, signed, written and marked sent in one hand-off to the
    # outbox's thread. Through the ORM it was three, each a wake-up of the
    # event loop from another thread: the claim and the mark on the ORM's
    # database thread, the signing and writing in asyncio's pool.
    clock = Clock(START)
    runner = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path)
    for n in range(3):
        await queue_notice(clock, to=f"client{n}@client.example")
    loop = asyncio.get_running_loop()
    woken = []
    real_call_soon_threadsafe = loop.call_soon_threadsafe

    def call_soon_threadsafe(callback, *args, **kwargs):
        woken.append(callback)
        return real_call_soon_threadsafe(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", call_soon_threadsafe)
    assert await runner.deliver_due() == 3
    monkeypatch.setattr(loop, "call_soon_threadsafe", real_call_soon_threadsafe)
    assert len(woken) == 1, woken
    assert await OutboundMessage.filter(status=OutboundStatus.SENT).count() == 3
    await runner.close()


@pytest.mark.sqlite_only  # the write turns of SQLite's writers (gateway/core/writeturns.py)
async def test_an_idle_outbox_does_not_wait_for_the_write_lock(store, tmp_path):
    # Another process's intake holds the turn and the write lock: with
    # nothing due, the outbox's poll answers without waiting for them.
    path = rows.sqlite_client().filename
    runner = make_runner(MaildirTransport(tmp_path / "outbox"), Clock(START), tmp_path)
    with writer_in_its_turn(path):
        assert await asyncio.wait_for(runner.deliver_due(), 60) == 0
    await runner.close()


async def test_runners_at_once_deliver_each_message_once(store, tmp_path):
    # Each claims on its own (on SQLite each on a thread and connection of
    # its own): no message is claimed by two, so none is written twice.
    clock = Clock(START)
    queued = [(await queue_notice(clock, to=f"client{n}@client.example"))[0] for n in range(12)]
    runners = [make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path, owner=f"runner-{n}")
               for n in range(3)]
    while await OutboundMessage.filter(status=OutboundStatus.QUEUED).exists():
        await asyncio.gather(*(runner.deliver_due(2) for runner in runners))
    for runner in runners:
        await runner.close()
    for item in queued:
        row = await OutboundMessage.get(id=item.id)
        assert (row.status, row.attempts, row.last_error) == (OutboundStatus.SENT, 1, f"outbound-{item.id}.eml")
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 12


class Crash(BaseException):
    """The process dying at that point: nothing after it runs."""


def crash(*args, **kwargs):
    raise Crash()


async def test_a_runner_that_dies_after_its_claim_loses_nothing(store, tmp_path, monkeypatch):
    clock = Clock(START)
    new = tmp_path / "outbox" / "new"
    dying = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path, owner="dying")
    queued = [(await queue_notice(clock, to=f"client{n}@client.example"))[0] for n in range(3)]
    monkeypatch.setattr(MaildirTransport, "write_many", crash)  # before any file is written
    with pytest.raises(Crash):
        await dying.deliver_due()
    monkeypatch.undo()
    await dying.close()
    assert await OutboundMessage.filter(lease_owner="dying", status=OutboundStatus.QUEUED).count() == 3
    assert not new.is_dir() or not list(new.iterdir())
    # Once its lease ran out another runner takes them (a process started
    # again on this machine takes them at once: the next test).
    clock.now = START + LEASE + timedelta(seconds=1)
    other = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path, owner="other")
    assert await other.deliver_due() == 3
    await other.close()
    for item in queued:
        row = await OutboundMessage.get(id=item.id)
        assert (row.status, row.attempts, row.last_error) == (OutboundStatus.SENT, 1, f"outbound-{item.id}.eml")
    assert sorted(path.name for path in new.iterdir()) == sorted(f"outbound-{item.id}.eml" for item in queued)


async def test_a_runner_that_dies_between_writing_and_marking_sent_sends_nothing_twice(store, tmp_path, monkeypatch):
    me = this_process()
    dead = str(Owner(me.host, "otherboot", 1, "1"))  # a process of an earlier boot
    clock = Clock(START)
    new = tmp_path / "outbox" / "new"
    dying = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path, owner=dead)
    queued = [(await queue_notice(clock, to=f"client{n}@client.example"))[0] for n in range(3)]
    monkeypatch.setattr(outbox, "_sent_rows", crash)  # the files are in new/, the mark not made
    with pytest.raises(Crash):
        await dying.deliver_due()
    monkeypatch.undo()
    await dying.close()
    assert await OutboundMessage.filter(lease_owner=dead, status=OutboundStatus.QUEUED).count() == 3
    assert len(list(new.iterdir())) == 3
    # The next process on this machine takes back what the dead one held at
    # once, and finds each file written already.
    assert await LeaseKeeper(me, LEASE, clock).reclaim_dead() == 3
    other = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path, owner=str(me))
    assert await other.deliver_due() == 3
    await other.close()
    for item in queued:
        row = await OutboundMessage.get(id=item.id)
        assert (row.status, row.last_error) == (OutboundStatus.SENT, f"outbound-{item.id}.eml (delivered before)")
    assert sorted(path.name for path in new.iterdir()) == sorted(f"outbound-{item.id}.eml" for item in queued)


async def test_in_a_maildir_batch_only_the_message_that_failed_is_retried(store, tmp_path, monkeypatch):
    clock = Clock(START)
    transport = MaildirTransport(tmp_path / "outbox")
    runner = make_runner(transport, clock, tmp_path)
    first, _ = await queue_notice(clock, to="one@client.example")
    second, _ = await queue_notice(clock, to="two@client.example")
    real_rename = maildir.os.rename

    def rename(source, target):
        if f"outbound-{second.id}" in str(target):
            raise OSError(28, "No space left on device")
        return real_rename(source, target)

    monkeypatch.setattr(maildir.os, "rename", rename)
    assert await runner.deliver_due()
    monkeypatch.setattr(maildir.os, "rename", real_rename)
    one, two = await OutboundMessage.get(id=first.id), await OutboundMessage.get(id=second.id)
    assert one.status is OutboundStatus.SENT
    assert (two.status, two.attempts, two.lease_owner) == (OutboundStatus.QUEUED, 1, "")
    assert "No space left on device" in two.last_error and two.next_attempt_at > START
    assert [path.name for path in (tmp_path / "outbox" / "new").iterdir()] == [f"outbound-{first.id}.eml"]
    assert not list((tmp_path / "outbox" / "tmp").iterdir())  # the half-delivered file did not stay
    clock.now = two.next_attempt_at
    assert await runner.deliver_due()
    assert (await OutboundMessage.get(id=second.id)).status is OutboundStatus.SENT
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 2


async def test_the_runner_delivers_more_than_a_batch_at_once_and_what_is_queued_later_on_its_wake(store, tmp_path):
    # Idle polls an hour apart: whatever goes out below went at once.
    clock = Clock(START)
    runner = make_runner(MaildirTransport(tmp_path / "outbox"), clock, tmp_path)
    new = tmp_path / "outbox" / "new"
    for n in range(outbox.BATCH + 1):
        await queue_notice(clock, to=f"client{n}@client.example")

    async def delivered(count: int) -> None:
        while len(list(new.iterdir()) if new.is_dir() else []) < count:
            await asyncio.sleep(0.01)

    stopping = asyncio.Event()
    task = asyncio.create_task(runner.run(stopping, Health(), idle_seconds=3600))
    try:
        await asyncio.wait_for(delivered(outbox.BATCH + 1), 30)
        await queue_notice(clock, to="later@client.example")
        runner.wake.set()  # as the transaction that queued it does
        await asyncio.wait_for(delivered(outbox.BATCH + 2), 30)
    finally:
        stopping.set()
        await task
    assert await OutboundMessage.filter(status=OutboundStatus.SENT).count() == outbox.BATCH + 2
    # Its own thread (on SQLite) ends with it.
    for thread in threading.enumerate():
        if thread.name.startswith("outbox"):
            thread.join()
