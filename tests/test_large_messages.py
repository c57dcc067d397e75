"""Large messages: the body goes to the blob store while it arrives (never
held whole), the request is made from it, nothing is lost when the process
dies after the 250, and large messages in transfer at once are bounded
(452 at MAIL, 421 after waiting)."""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket

import pytest

from gateway.admission import draining
from gateway.blobs import BlobMissing
from gateway.core import db
from gateway.core.models import InboundMessage, InboundStatus, PaymentRequest
from gateway.inbound import bodies, queue as inbound_queue
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
        assert done.status is InboundStatus.DONE and done.body_blob == "" and done.sealed_raw is None
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
        await InboundMessage.filter(id=queued.id).update(status=InboundStatus.DONE, sealed_raw=None)
        assert await inbound_queue.forget_done_bodies(gw.deps.blobs) == 1
        assert (await InboundMessage.get()).body_blob == ""
        with pytest.raises(BlobMissing):
            await read_blob(gw.deps.blobs, queued.body_blob)
        assert await inbound_queue.forget_done_bodies(gw.deps.blobs) == 0
