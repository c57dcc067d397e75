"""The outbox sends the mail of requests a process has in flight together
in one batch (one flush of the database's log, one fsync of the Maildir's
new/, one claim and one mark for all of it), without holding a lone
request's mail or holding mail behind work that does not end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.inbound import runner as queue_runner
from gateway.outbound import maildir, outbox
from gateway.outbound.maildir import MaildirTransport
from gateway.service import running
from tests.conftest import make_settings, mails_to, request_mail, send, settled
from tests.test_flow import PDF

ATTACHED = [("invoice-1042.pdf", "application/pdf", PDF)]


def request_to(client: str, invoice: int):
    return request_mail(f"Invoice {invoice} $1,250.00 to={client} pw=Blue42", attachments=ATTACHED)


def batches_written(monkeypatch) -> tuple[list[int], list[Path]]:
    """How many messages each Maildir batch wrote, and the folders the
    Maildir fsync'd: counted on the way through the real ones."""
    sizes: list[int] = []
    synced: list[Path] = []
    real_write_many, real_fsync_dir = MaildirTransport.write_many, maildir.fsync_dir

    def write_many(self, messages):
        sizes.append(len(messages))
        return real_write_many(self, messages)

    def fsync_dir(path: str | Path) -> None:
        synced.append(Path(path))
        real_fsync_dir(path)

    monkeypatch.setattr(MaildirTransport, "write_many", write_many)
    monkeypatch.setattr(maildir, "fsync_dir", fsync_dir)
    return sizes, synced


def requests_held(monkeypatch, gate, written=None) -> None:
    """Each request waits for ``gate()`` before it is written (and its mail
    queued): in flight until then; ``written()`` after."""
    real_create_request = queue_runner.create_request

    async def create_request(*args, **kwargs):
        await gate()
        await real_create_request(*args, **kwargs)
        if written is not None:
            written()

    monkeypatch.setattr(queue_runner, "create_request", create_request)


async def test_the_mail_of_requests_in_flight_together_goes_out_in_one_batch(tmp_path, monkeypatch):
    # Only the end of the work ends the outbox's wait here, not its bound.
    monkeypatch.setattr(outbox, "GATHER_MOST", 3600.0)
    both_in_flight, first_written, gone_on = asyncio.Barrier(2), asyncio.Event(), []

    async def gate() -> None:
        # Both in flight; then one is written, and the other a while after
        # it (before this change, long enough for the first one's mail to
        # go out alone).
        await both_in_flight.wait()
        if gone_on:
            await first_written.wait()
            await asyncio.sleep(0.5)
        gone_on.append(True)

    requests_held(monkeypatch, gate, first_written.set)
    async with running(make_settings(tmp_path, queue_workers=2)) as gw:
        await settled()
        sizes, synced = batches_written(monkeypatch)
        await asyncio.gather(send(gw, request_to("jane@client.example", 1042)),
                             send(gw, request_to("john@client.example", 1043)))
        await settled()
        assert len(mails_to(gw, "jane@client.example")) == len(mails_to(gw, "john@client.example")) == 1
    # Each request's client mail and confirmation: four mails, one batch.
    assert sizes == [4]
    assert synced.count(gw.deps.settings.outbox_dir / "new") == 1  # (the first batch also made the Maildir)


async def test_a_lone_requests_mail_is_not_held(tmp_path, monkeypatch):
    # Were a lone request's mail held for the bound, it would not arrive.
    monkeypatch.setattr(outbox, "GATHER_MOST", 3600.0)
    async with running(make_settings(tmp_path, queue_workers=2)) as gw:
        await settled()
        sizes, _ = batches_written(monkeypatch)
        await send(gw, request_to("jane@client.example", 1042))
        await settled()
        assert len(mails_to(gw, "jane@client.example")) == 1
    assert sizes == [2]


async def test_mail_is_not_held_behind_work_that_does_not_end(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox, "GATHER_MOST", 0.05)
    stuck = asyncio.Event()
    first = []

    async def gate() -> None:
        # The first request stays in flight until the end of the test.
        if not first:
            first.append(True)
            await stuck.wait()

    requests_held(monkeypatch, gate)
    async with running(make_settings(tmp_path, queue_workers=2)) as gw:
        await settled()
        await send(gw, request_to("jane@client.example", 1042))
        while not first:
            await asyncio.sleep(0.01)
        await send(gw, request_to("john@client.example", 1043))
        for _ in range(2000):
            if mails_to(gw, "john@client.example"):
                break
            await asyncio.sleep(0.01)
        assert len(mails_to(gw, "john@client.example")) == 1
        assert not mails_to(gw, "jane@client.example")
        stuck.set()
        await settled()
        assert len(mails_to(gw, "jane@client.example")) == 1
