"""SMTP admission over real loopback: what a sending server sees."""

from __future__ import annotations

import asyncio
import email.utils
import smtplib

import pytest

from gateway.core.models import InboundMessage
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


async def test_at_most_100_recipients_a_message(gateway):
    def many(client):
        client.ehlo()
        client.mail(DEMO_STAFF)
        codes = [client.rcpt(GATEWAY)[0] for _ in range(100)]
        codes += [client.rcpt(GATEWAY)[0], client.rcpt("jane@client.example")[0]]
        client.rset()  # a new transaction counts from zero
        client.mail(DEMO_STAFF)
        return codes, client.rcpt(GATEWAY)[0]

    codes, after_reset = await asyncio.to_thread(smtp_dialogue, gateway.smtp_port, many)
    assert codes == [250] * 100 + [452, 452] and after_reset == 250


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


async def test_unknown_sender_gets_550_and_no_mail_goes_back(gateway):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await send(gateway, request_mail(SUBJECT, sender="stranger@elsewhere.example"))
    assert refused.value.smtp_code == 550 and b"not on the firm's staff list" in refused.value.smtp_error
    assert await InboundMessage.all().count() == 0


def rsa_key() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture
async def production_gateway(tmp_path):
    """Not --demo: loopback is not trusted; DNS answers from a dict, or times out."""
    import base64

    from gateway.admission.keylookup import DnsFailure
    from gateway.core import directory
    from gateway.core.clock import system_clock
    from gateway.service import running

    private, public = rsa_key()
    records = {"sel._domainkey.smith-cpa.example": b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)}

    async def resolve(name: str):
        if "timeout" in name:
            raise DnsFailure("DNS timed out")
        return records.get(name.rstrip("."))

    settings = make_settings(tmp_path, demo=False)
    async with running(settings, resolve=resolve) as gw:
        firm = await directory.add_firm("smith-cpa.example", "Smith CPA", currency="CAD",
                                        timezone="America/Toronto", now=system_clock(), actor="test")
        await directory.add_staff(firm, "ann@smith-cpa.example", directory.Level.SEND, now=system_clock(), actor="test")
        yield gw, private


def signed(message, private: bytes, domain: str = "smith-cpa.example", selector: bytes = b"sel") -> bytes:
    import dkim

    if message["Date"] is None:
        message["Date"] = email.utils.formatdate()
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    headers = [b"from", b"to", b"subject", b"date", b"message-id"]
    return dkim.sign(raw, selector, domain.encode(), private, include_headers=headers) + raw


async def send_raw(gw, raw: bytes, sender: str, rcpt: str):
    def deliver():
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as client:
            return client.sendmail(sender, [rcpt], raw)
    return await asyncio.to_thread(deliver)


async def test_without_demo_loopback_is_not_trusted(production_gateway):
    gw, _ = production_gateway
    message = request_mail(SUBJECT, sender="ann@smith-cpa.example")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await send_raw(gw, message.as_bytes(), "ann@smith-cpa.example", "pay@smith-cpa.example")
    assert refused.value.smtp_code == 550 and b"5.7.1" in refused.value.smtp_error
    assert await InboundMessage.all().count() == 0


async def test_an_aligned_dkim_signature_is_accepted(production_gateway):
    gw, private = production_gateway
    message = request_mail(SUBJECT, sender="ann@smith-cpa.example")
    del message["To"]
    message["To"] = "pay@smith-cpa.example"
    assert await send_raw(gw, signed(message, private), "ann@smith-cpa.example", "pay@smith-cpa.example") == {}
    assert await InboundMessage.all().count() == 1


async def test_a_dns_failure_answers_451_never_250(production_gateway):
    gw, private = production_gateway
    message = request_mail(SUBJECT, sender="ann@smith-cpa.example")
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        await send_raw(gw, signed(message, private, selector=b"timeout"), "ann@smith-cpa.example",
                       "pay@smith-cpa.example")
    assert deferred.value.smtp_code == 451
    assert await InboundMessage.all().count() == 0


async def test_past_the_hourly_limit_a_sender_gets_451_and_can_retry_later(tmp_path):
    from gateway.service import running

    async with running(make_settings(tmp_path, sender_hourly_limit=3)) as gw:
        for n in range(3):
            assert await send(gw, request_mail(f"help {n}")) == {}
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            await send(gw, request_mail("help"))
        assert deferred.value.smtp_code == 451 and b"Too many messages" in deferred.value.smtp_error
        assert await InboundMessage.all().count() == 3


async def test_past_the_firm_limit_every_sender_waits(tmp_path):
    from gateway.core import directory
    from gateway.core.models import Firm, Level
    from gateway.service import running

    async with running(make_settings(tmp_path, firm_hourly_limit=2)) as gw:
        firm = await Firm.get(domain="demo.localhost")
        await directory.add_staff(firm, "sam@demo.localhost", Level.SEND, now=gw.deps.clock(), actor="test")
        await send(gw, request_mail("help"))
        await send(gw, request_mail("help", sender="sam@demo.localhost"))
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            await send(gw, request_mail("help", sender="sam@demo.localhost"))
        assert deferred.value.smtp_code == 451 and b"pay@demo.localhost" in deferred.value.smtp_error
