"""Large messages: the body goes to the blob store while it arrives (never
held whole), the request is made from it, nothing is lost when the process
dies after the 250, and large messages in transfer at once are bounded
(452 at MAIL, 421 after waiting)."""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import tracemalloc

import pytest

from gateway.admission import draining
from gateway.blobs import BlobMissing
from gateway.core import db
from gateway.core.models import InboundMessage, InboundRaw, InboundStatus, PaymentRequest, SealedFile
from gateway.inbound import bodies, queue as inbound_queue
from gateway.mail.parse import parse as parse_mail
from gateway.service import running
from tests.conftest import DEMO_STAFF, GATEWAY, database_url, make_settings, mails_to, request_mail, send, settled
from tests.processes import Gateway, gateway_env
from tests.test_flow import files_of

SUBJECT = "Invoice 77 $1,250.00 to=jane@client.example pw=Blue42 hint=Sky"
LARGE = 64 * 1024  # the threshold these tests set: a few hundred KB is large
PDF = b"%PDF-1.4\n" + os.urandom(600_000) + b"\n%%EOF\n"


def large_mail() -> bytes:
    message = request_mail(SUBJECT, attachments=[("scan.pdf", "application/pdf", PDF)])
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


async def read_blob(store, name: str) -> bytes:
    return b"".join([piece async for piece in store.read(name)])


async def test_a_large_message_arrives_in_the_store_and_becomes_a_request(tmp_path):
    async with running(make_settings(tmp_path, large_message_bytes=LARGE, roles=("smtp", "web"))) as gw:
        await send(gw, request_mail(SUBJECT, attachments=[("scan.pdf", "application/pdf", PDF)]))
        queued = await InboundMessage.get()
        # The row holds the header section; the body is in the store, sealed.
        assert queued.body_blob == bodies.blob_name(queued.id) and queued.body_salt
        stored = await read_blob(gw.deps.blobs, queued.body_blob)
        assert PDF[1000:1100] not in stored and len(stored) > len(PDF)
    # The runners, in a process of their own later, make the request from it.
    async with running(make_settings(tmp_path, large_message_bytes=LARGE)) as gw:
        gw.deps.inbound_wake.set()
        await settled(60)
        request = await PaymentRequest.get()
        files = await files_of(gw, request, "Blue42")
        assert files["scan.pdf"] == PDF
        assert len(mails_to(gw, "jane@client.example")) == 1
        done = await InboundMessage.get()
        assert done.status is InboundStatus.DONE and done.body_blob == "" and not await InboundRaw.exists()
        with pytest.raises(BlobMissing):
            await read_blob(gw.deps.blobs, bodies.blob_name(done.id))


async def test_a_refused_large_message_leaves_nothing_in_the_store(tmp_path):
    async with running(make_settings(tmp_path, large_message_bytes=LARGE)) as gw:
        with pytest.raises(smtplib.SMTPException):
            await send(gw, request_mail(SUBJECT, sender="stranger@demo.localhost",
                                        attachments=[("scan.pdf", "application/pdf", PDF)]))
        assert await InboundMessage.all().count() == 0
        inbound = gw.deps.settings.blobs_dir / "inbound"
        assert not inbound.exists() or not [p for p in inbound.iterdir()]


async def test_a_header_section_too_large_for_memory_is_refused(tmp_path):
    async with running(make_settings(tmp_path, large_message_bytes=LARGE)) as gw:
        def send_huge_header() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=60) as client:
                client.ehlo()
                client.mail(DEMO_STAFF)
                client.rcpt(GATEWAY)
                fold = b"X-Padding: start\r\n" + b"".join(b" %s\r\n" % (b"p" * 900) for _ in range(1300))
                return client.data(b"From: " + DEMO_STAFF.encode() + b"\r\n" + fold + b"Subject: x\r\n\r\nbody\r\n")
        code, text = await asyncio.to_thread(send_huge_header)
        assert code == 552 and b"Header section too large" in text
        assert await InboundMessage.all().count() == 0


async def test_nothing_answered_250_is_lost_when_the_process_dies_after_it(tmp_path):
    env = gateway_env(tmp_path / "data", database_url(tmp_path), large_message_bytes=LARGE, log_level="INFO")
    front = Gateway("front", tmp_path, env, "smtp,web").start().wait_ready()
    try:
        code, text = await asyncio.to_thread(_deliver, front.smtp_port, large_mail())
        assert code == 250
        front.kill()  # kill -9 right after the 250: no shutdown, no hand-back
    finally:
        front.stop()
    runner = Gateway("runner", tmp_path, env, "queue,outbox").start()
    try:
        await asyncio.to_thread(runner.wait_for_log, "delivered", 90)
    finally:
        assert runner.stop() == 0
    async with db.opened(database_url(tmp_path)):
        request = await PaymentRequest.get()
        assert request.client_email == "jane@client.example"
        assert (await InboundMessage.get()).status is InboundStatus.DONE


def _deliver(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo()
        client.mail(DEMO_STAFF)
        client.rcpt(GATEWAY)
        return client.data(raw)


class Session:
    """A raw SMTP session, to stop half-way through DATA."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.reply()

    def reply(self) -> bytes:
        while True:
            line = self.file.readline()
            if line[3:4] != b"-":
                return line

    def command(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


async def test_large_messages_in_transfer_at_once_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(draining, "LARGE_WAIT_SECONDS", 1.0)
    raw = large_mail()
    async with running(make_settings(tmp_path, large_message_bytes=LARGE, large_sessions=1)) as gw:
        port = gw.smtp_port

        def scenario() -> dict[str, bytes]:
            seen = {}
            first = Session(port)  # declares a large message: takes the one place
            first.command("EHLO first")
            seen["first MAIL"] = first.command(f"MAIL FROM:<{DEMO_STAFF}> SIZE={len(raw)}")
            first.command(f"RCPT TO:<{GATEWAY}>")
            second = Session(port)  # declares one too: no place now
            second.command("EHLO second")
            seen["second MAIL"] = second.command(f"MAIL FROM:<{DEMO_STAFF}> SIZE={len(raw)}")
            small = Session(port)  # a small message is not held up
            small.command("EHLO small")
            seen["small MAIL"] = small.command(f"MAIL FROM:<{DEMO_STAFF}> SIZE=2000")
            third = Session(port)  # declares nothing, grows large in DATA: waits, then 421
            third.command("EHLO third")
            third.command(f"MAIL FROM:<{DEMO_STAFF}>")
            third.command(f"RCPT TO:<{GATEWAY}>")
            third.command("DATA")
            try:
                third.sock.sendall(raw + b".\r\n")
            except OSError:
                pass
            seen["third DATA"] = third.reply()
            third.close()
            first.command("DATA")
            first.sock.sendall(raw + b".\r\n")
            seen["first DATA"] = first.reply()
            first.command("QUIT")
            first.close()
            seen["second MAIL again"] = second.command(f"MAIL FROM:<{DEMO_STAFF}> SIZE={len(raw)}")
            second.command("QUIT")
            second.close()
            small.close()
            return seen

        seen = await asyncio.to_thread(scenario)
        assert seen["first MAIL"].startswith(b"250")
        assert seen["second MAIL"].startswith(b"452 4.3.1")
        assert seen["small MAIL"].startswith(b"250")
        assert seen["third DATA"].startswith(b"421 4.3.2")
        assert seen["first DATA"].startswith(b"250")
        assert seen["second MAIL again"].startswith(b"250")  # the place came back
        await settled(60)
        assert await PaymentRequest.all().count() == 1


async def test_housekeeping_deletes_a_done_body_the_runner_did_not(tmp_path):
    async with running(make_settings(tmp_path, large_message_bytes=LARGE, roles=("smtp", "web"))) as gw:
        await send(gw, request_mail(SUBJECT, attachments=[("scan.pdf", "application/pdf", PDF)]))
        queued = await InboundMessage.get()
        # As if the runner had finished it and died before deleting its body.
        await InboundMessage.filter(id=queued.id).update(status=InboundStatus.DONE)
        await InboundRaw.filter(id=queued.id).delete()
        assert await inbound_queue.forget_done_bodies(gw.deps.blobs) == 1
        assert (await InboundMessage.get()).body_blob == ""
        with pytest.raises(BlobMissing):
            await read_blob(gw.deps.blobs, queued.body_blob)
        assert await inbound_queue.forget_done_bodies(gw.deps.blobs) == 0


# -- the runner reads a large message in pieces (inbound/large.py) -------------------------------------------

def objects_in(gw) -> set[str]:
    """The request files' objects in the store (not the inbound bodies)."""
    root = gw.deps.settings.blobs_dir
    return {str(path.relative_to(root)) for path in (root / "f").glob("*/*") if not path.name.startswith(".")}


async def test_a_large_messages_attachments_are_sealed_as_they_stream_and_named_by_the_request(tmp_path):
    png = os.urandom(200_000)
    message = request_mail(SUBJECT, attachments=[("scan.pdf", "application/pdf", PDF), ("b.png", "image/png", png),
                                                 ("notes.csv", "text/csv", b"a,b\r\n1,2\r\n")])
    async with running(make_settings(tmp_path, large_message_bytes=LARGE)) as gw:
        await send(gw, message)
        await settled(60)
        request = await PaymentRequest.get()
        files = await files_of(gw, request, "Blue42")
        assert files == {"message.txt": files["message.txt"], "scan.pdf": PDF, "b.png": png,
                         "notes.csv": b"a,b\r\n1,2\r\n"}
        rows = await SealedFile.filter(request=request).order_by("position")
        assert [row.filename for row in rows] == ["message.txt", "scan.pdf", "b.png", "notes.csv"]
        assert [row.size for row in rows[1:]] == [len(PDF), len(png), 10]
        # Nothing in the store but what the request names.
        assert objects_in(gw) == {row.blob for row in rows}


async def test_a_large_message_that_is_not_a_request_leaves_none_of_its_files(tmp_path):
    async with running(make_settings(tmp_path, large_message_bytes=LARGE)) as gw:
        # No amount and no client: the sender gets a reply saying why, and no request is made.
        await send(gw, request_mail("Invoice 77", attachments=[("scan.pdf", "application/pdf", PDF)]))
        await settled(60)
        assert await PaymentRequest.all().count() == 0
        done = await InboundMessage.get()
        assert done.status is InboundStatus.DONE and done.body_blob == ""
        assert len(mails_to(gw, DEMO_STAFF)) == 1
        assert objects_in(gw) == set()


async def test_a_large_message_the_splitter_cannot_follow_is_read_whole(tmp_path):
    # A stray character in the attachment's base64: the splitter stops, the
    # message is read whole, and it reads as it always did.
    message = request_mail(SUBJECT, attachments=[("scan.pdf", "application/pdf", PDF)])
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    at = raw.index(b"\r\n", raw.index(b"\r\n\r\n", raw.index(b"application/pdf")) + 12000)
    raw = raw[:at] + b"*" + raw[at:]
    async with running(make_settings(tmp_path, large_message_bytes=LARGE)) as gw:
        code, _ = await asyncio.to_thread(_deliver, gw.smtp_port, raw)
        assert code == 250
        await settled(60)
        request = await PaymentRequest.get()
        whole = parse_mail(raw)
        files = await files_of(gw, request, "Blue42")
        assert files["scan.pdf"] == whole.attachments[0].data
        assert objects_in(gw) == {row.blob for row in await SealedFile.filter(request=request)}


async def test_the_runner_never_holds_a_large_message_whole(tmp_path):
    """Python's allocations while the runner makes the request of an 8 MB
    message (tracemalloc; Argon2id's memory is not Python's) stay below
    the message's size: read whole, parsing alone held several copies of
    it. (About 5 MB here, much of it modules loaded on first use.)"""
    pdf = b"%PDF-1.4\n" + os.urandom(6_000_000) + b"\n%%EOF\n"
    message = request_mail(SUBJECT, attachments=[("big.pdf", "application/pdf", pdf)])
    size = len(message.as_bytes())
    async with running(make_settings(tmp_path, large_message_bytes=LARGE, roles=("smtp", "web"))) as gw:
        await send(gw, message)
    tracemalloc.start()
    try:
        async with running(make_settings(tmp_path, large_message_bytes=LARGE)) as gw:
            tracemalloc.reset_peak()
            gw.deps.inbound_wake.set()
            await settled(60)
            _, peak = tracemalloc.get_traced_memory()
            request = await PaymentRequest.get()
    finally:
        tracemalloc.stop()
    assert peak < size, f"peak {peak} for a message of {size}"
    async with running(make_settings(tmp_path, large_message_bytes=LARGE, roles=("web",))) as gw:
        assert (await files_of(gw, request, "Blue42"))["big.pdf"] == pdf
