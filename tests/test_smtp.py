"""SMTP admission over real loopback: what a sending server sees."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from gateway.models import InboundMessage
from tests.conftest import DEMO_STAFF, GATEWAY, make_settings, request_mail, send

SUBJECT = "Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint=Sky"


def smtp_dialogue(port: int, steps):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return steps(client)


async def test_banner_is_ours_not_the_library(gateway):
    def greet():
        with smtplib.SMTP() as client:
            code, banner = client.connect("127.0.0.1", gateway.smtp_port)
            return banner.decode()

    banner = await asyncio.to_thread(greet)
    assert "clienttrack gateway" in banner
    assert "aiosmtpd" not in banner.lower() and "python" not in banner.lower()


@pytest.mark.parametrize("rcpt", ["jane@client.example", "pay@unknown-firm.example", "billing@demo.localhost"])
async def test_rcpt_that_is_not_a_gateway_address_gets_550(gateway, rcpt):
    def try_rcpt(client):
        client.ehlo()
        client.mail(DEMO_STAFF)
        return client.rcpt(rcpt)

    code, text = await asyncio.to_thread(smtp_dialogue, gateway.smtp_port, try_rcpt)
    assert code == 550
    assert b"does not relay" in text
    assert await InboundMessage.all().count() == 0


async def test_250_carries_the_queue_id_and_the_message_is_committed_first(gateway):
    def deliver(client):
        client.ehlo()
        client.mail(DEMO_STAFF)
        client.rcpt(GATEWAY)
        return client.data(request_mail(SUBJECT).as_bytes(policy=request_mail(SUBJECT).policy.clone(linesep="\r\n")))

    code, text = await asyncio.to_thread(smtp_dialogue, gateway.smtp_port, deliver)
    assert code == 250
    queue_id = text.decode().rsplit(" ", 1)[-1]
    queued = await InboundMessage.get(id=queue_id)
    assert queued.mail_from == DEMO_STAFF
    assert queued.rcpt_tos == [GATEWAY]


async def test_gateway_address_is_case_insensitive(gateway):
    refused = await send(gateway, request_mail(SUBJECT), rcpt="PAY@Demo.LocalHost")
    assert refused == {}


async def test_oversize_message_gets_552_and_nothing_is_queued(tmp_path):
    from gateway.service import running

    async with running(make_settings(tmp_path, max_message_size=64 * 1024)) as gw:
        big = request_mail(SUBJECT, attachments=[("big.pdf", "application/pdf", b"%PDF" + b"x" * 100_000)])
        with pytest.raises(smtplib.SMTPException) as failure:
            await send(gw, big)
        code = getattr(failure.value, "smtp_code", None) or failure.value.recipients[GATEWAY][0]
        assert code == 552
        assert await InboundMessage.all().count() == 0


async def test_size_limit_is_advertised(gateway):
    def ehlo(client):
        client.ehlo()
        return client.esmtp_features.get("size")

    size = await asyncio.to_thread(smtp_dialogue, gateway.smtp_port, ehlo)
    assert int(size) == 25 * 1024 * 1024
