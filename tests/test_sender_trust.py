"""Sender trust, attacked as a stranger would: signed mail of the firm's
admin, re-headed or replayed, must not act as the admin (issue 10).

Everything is real: the gateway (not --demo) on loopback, its DKIM key
look-ups through CLIENTTRACK_DNS_NAMESERVERS to a DNS server on loopback
(tests/dnsserver.py) serving keys made here, mail over SMTP with smtplib.
Each attack must be refused at DATA (5xx, with the reason) and change
nothing: no staff change, no request, nothing queued, no mail out.
"""

from __future__ import annotations

import asyncio
import email.utils
import smtplib
import time
from pathlib import Path

import pytest

from gateway.core import directory
from gateway.core.models import InboundMessage, InboundRaw, Level, OutboundMessage, PaymentRequest, Staff
from gateway.inbound import queue as inbound
from gateway.service import running
from tests.conftest import CLIENT_THREADS, make_settings, settled
from tests.dkimkeys import GMAIL_HEADERS, M365_HEADERS, Key, mail, sign
from tests.dnsserver import LoopbackDns

FIRM = "smithcpa.example"
GATEWAY = f"pay@{FIRM}"
BOSS = f"boss@{FIRM}"
MALLORY = "mallory@evil.example"
VICTIM = "victim@client.example"
TRUSTED_ID = "mx.smithcpa.example"
GRANT = f"grant {MALLORY} admin"
REQUEST = f"Invoice 77 CAD 4,999.00 to={VICTIM} pw=Secret12"
HOUR = 3600


@pytest.fixture(scope="module")
def key() -> Key:
    return Key()


@pytest.fixture(scope="module")
def tenant_key() -> Key:
    return Key()


@pytest.fixture
async def dns_server(key, tenant_key):
    async with LoopbackDns() as server:
        server.publish(f"sel._domainkey.{FIRM}", key.record)
        # Microsoft 365 signs twice: the firm's domain and its tenant's.
        server.publish("selector1._domainkey.smithcpa.onmicrosoft.com", tenant_key.record)
        yield server


async def start(tmp_path: Path, dns_server: LoopbackDns, **overrides):
    settings = make_settings(tmp_path, demo=False, dns_nameservers=dns_server.address, **overrides)
    context = running(settings)
    gw = await context.__aenter__()
    now = gw.deps.clock()
    firm = await directory.add_firm(FIRM, "Smith CPA", currency="CAD", timezone="Asia/Tokyo", now=now, actor="test")
    await directory.add_staff(firm, BOSS, Level.ADMIN, now=now, actor="test")
    return context, gw


@pytest.fixture
async def gateway(tmp_path, dns_server):
    context, gw = await start(tmp_path, dns_server)
    try:
        yield gw
    finally:
        await context.__aexit__(None, None, None)


async def deliver(gw, raw: bytes, rcpt: str = GATEWAY) -> tuple[int, str]:
    """(code, text) of the server's answer to the message, at RCPT or DATA."""
    def send() -> tuple[int, str]:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as client:
            try:
                client.sendmail(f"bounce@{FIRM}", [rcpt], raw)
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                return code, text.decode()
            except smtplib.SMTPResponseException as exc:
                return exc.smtp_code, exc.smtp_error.decode()
            return 250, ""
    return await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, send)


async def state() -> dict:
    """What an attack could change."""
    return {
        "staff": sorted(await Staff.all().values_list("email", "level")),
        "requests": await PaymentRequest.all().count(),
        "queued": await InboundMessage.all().count(),
        "outbox": await OutboundMessage.all().count(),
    }


async def assert_refused(gw, raw: bytes, *words: str) -> str:
    before = await state()
    code, text = await deliver(gw, raw)
    assert 500 <= code < 600, (code, text)
    assert text.startswith("5.7."), text
    for word in words:
        assert word in text, text
    await settled()
    assert await state() == before
    return text


async def assert_accepted(gw, raw: bytes) -> None:
    code, text = await deliver(gw, raw)
    assert code == 250, (code, text)
    await settled()


def gmail(subject: str, *, to: str = GATEWAY, **options) -> bytes:
    return sign(mail(sender=BOSS, to=to, subject=subject, **options), KEYS["firm"], FIRM, headers=GMAIL_HEADERS)


KEYS: dict[str, Key] = {}


@pytest.fixture(autouse=True)
def _keys(key, tenant_key):
    KEYS.update(firm=key, tenant=tenant_key)


def lunch(to: str = MALLORY, headers: tuple[str, ...] = GMAIL_HEADERS, **options) -> bytes:
    """The admin's ordinary signed mail to a stranger."""
    return sign(mail(sender=BOSS, to=to, subject="Re: lunch tomorrow?", **options), KEYS["firm"], FIRM,
                headers=headers)


# --------------------------------------------------------------------------
# 1. What a signature must cover; ambiguous header sections
# --------------------------------------------------------------------------


@pytest.mark.parametrize("subject", [GRANT, REQUEST])
async def test_a_subject_put_on_top_of_signed_mail_is_refused(gateway, subject):
    raw = f"Subject: {subject}\r\n".encode() + lunch(to=GATEWAY)
    await assert_refused(gateway, raw, "Subject")


async def test_a_subject_put_on_top_of_mail_to_a_stranger_is_refused(gateway):
    raw = f"Subject: {GRANT}\r\n".encode() + lunch()
    await assert_refused(gateway, raw)


async def test_a_signature_that_covers_only_from_cannot_carry_a_subject(gateway):
    signed = sign(mail(sender=BOSS, to=GATEWAY, subject="Re: lunch tomorrow?"), KEYS["firm"], FIRM,
                  headers=("from",))
    raw = signed.replace(b"Subject: Re: lunch tomorrow?", f"Subject: {GRANT}".encode())
    await assert_refused(gateway, raw, "Subject")


OVERSIGNED = (*GMAIL_HEADERS, "subject", "from")


@pytest.mark.parametrize("hidden", [
    f"X-Note: a\rSubject: {GRANT}",  # a bare CR: one header to dkimpy, two to Python's parser
    f"X-Note: a\nSubject: {GRANT}",  # a bare LF
    f"X-Note: a\r\rSubject: {GRANT}",
    f"X-Note: a\n\rSubject: {GRANT}",
])
@pytest.mark.parametrize("headers", [GMAIL_HEADERS, OVERSIGNED], ids=["gmail", "oversigned"])
async def test_a_header_hidden_behind_a_bare_cr_or_lf_is_refused(gateway, hidden, headers):
    signed = sign(mail(sender=BOSS, to=GATEWAY, subject="Re: lunch tomorrow?"), KEYS["firm"], FIRM, headers=headers)
    await assert_refused(gateway, hidden.encode() + b"\r\n" + signed, "bare")


@pytest.mark.parametrize("extra", [
    f"Subject: {GRANT}",
    f"SUBJECT:{GRANT}",
    pytest.param("Date: " + email.utils.formatdate(), id="Date: now"),  # an id that stays put: xdist's workers collect at different seconds
    f"Message-ID: <other@{FIRM}>",
    f"To: {GATEWAY}",
    f"Cc: {GATEWAY}",
    f"Reply-To: {MALLORY}",
    f"Sender: {BOSS}",
    "Content-Type: text/plain; charset=utf-8",
    "MIME-Version: 1.0",
])
async def test_a_second_singleton_header_is_refused(gateway, extra):
    raw = lunch(to=GATEWAY, extra=(f"Reply-To: {BOSS}", f"Sender: {BOSS}", f"Cc: {BOSS}"))
    await assert_refused(gateway, extra.encode() + b"\r\n" + raw, "more than one")
    await assert_refused(gateway, raw.replace(b"\r\n\r\n", f"\r\n{extra}\r\n\r\n".encode(), 1), "more than one")


@pytest.mark.parametrize("line", [
    f"Subject : {GRANT}",  # not a header to Python, a header to some readers
    f" Subject: {GRANT}",  # a continuation with nothing to continue
    f"Subj\u0435ct: {GRANT}",  # a Cyrillic e in the name
    f"Subject\x00: {GRANT}",
    ":no name",
    f"From {BOSS} Mon Jan  1 00:00:00 2026",
])
async def test_a_line_two_parsers_read_differently_is_refused(gateway, line):
    await assert_refused(gateway, line.encode() + b"\r\n" + lunch(to=GATEWAY))


@pytest.mark.parametrize("missing", ["subject", "date", "message-id"])
async def test_the_signature_must_cover_subject_date_and_message_id(gateway, missing):
    headers = tuple(h for h in GMAIL_HEADERS if h != missing)
    raw = sign(mail(sender=BOSS, to=GATEWAY, subject=f"grant {MALLORY} send"), KEYS["firm"], FIRM, headers=headers)
    await assert_refused(gateway, raw, "not signed")


# --------------------------------------------------------------------------
# 2. Replay
# --------------------------------------------------------------------------


async def test_an_old_signed_message_is_refused(gateway):
    then = time.time() - 72 * HOUR
    raw = sign(mail(sender=BOSS, to=GATEWAY, subject=GRANT, date=then), KEYS["firm"], FIRM, signed_at=int(then))
    await assert_refused(gateway, raw, "Date")


async def test_a_message_dated_in_the_future_is_refused(gateway):
    later = time.time() + 6 * HOUR
    raw = sign(mail(sender=BOSS, to=GATEWAY, subject=GRANT, date=later), KEYS["firm"], FIRM)
    await assert_refused(gateway, raw, "Date")


async def test_an_expired_signature_is_refused(gateway):
    now = int(time.time())
    raw = sign(mail(sender=BOSS, to=GATEWAY, subject=GRANT), KEYS["firm"], FIRM, signed_at=now - HOUR,
               expires=now - 60)
    await assert_refused(gateway, raw, "expired")


async def test_a_message_id_is_accepted_once(gateway):
    raw = gmail(f"grant {MALLORY} send")
    await assert_accepted(gateway, raw)
    assert (await Staff.get(email=MALLORY)).level is Level.SEND
    firm = await directory.get_firm(FIRM)
    await directory.remove_staff(firm, MALLORY, now=gateway.deps.clock(), actor="test")
    # The same signed mail again, as it is and with an unsigned header added.
    await assert_refused(gateway, raw, "Message-ID", "already")
    await assert_refused(gateway, b"X-Resent: yes\r\n" + raw, "Message-ID", "already")


async def test_two_copies_at_once_are_accepted_once(gateway):
    raw = gmail(f"grant {MALLORY} send")
    answers = await asyncio.gather(*(deliver(gateway, raw) for _ in range(4)))
    assert sorted(code for code, _ in answers) == [250, 550, 550, 550], answers
    await settled()
    assert await InboundMessage.all().count() == 1


@pytest.mark.parametrize("to, cc", [(MALLORY, None), (MALLORY, f"bob@{FIRM}"), (f"{MALLORY}, bob@{FIRM}", None),
                                    (f'"{GATEWAY}" <{MALLORY}>', None)])
async def test_signed_mail_to_someone_else_is_not_a_command(gateway, to, cc):
    extra = (f"Cc: {cc}",) if cc else ()
    raw = sign(mail(sender=BOSS, to=to, subject=GRANT, extra=extra), KEYS["firm"], FIRM)
    await assert_refused(gateway, raw, GATEWAY)


async def test_the_gateway_in_a_signed_cc_is_enough(gateway):
    raw = sign(mail(sender=BOSS, to=f"bob@{FIRM}", subject=f"grant {MALLORY} send", extra=(f"Cc: {GATEWAY}",)),
               KEYS["firm"], FIRM)
    await assert_accepted(gateway, raw)
    assert await Staff.exists(email=MALLORY, level=Level.SEND)


# --------------------------------------------------------------------------
# Real senders keep working
# --------------------------------------------------------------------------


async def test_a_gmail_style_signature_works(gateway):
    await assert_accepted(gateway, gmail(f"grant {MALLORY} send"))
    assert await Staff.exists(email=MALLORY, level=Level.SEND)
    await assert_accepted(gateway, gmail(REQUEST))
    assert await PaymentRequest.filter(client_email=VICTIM, amount_minor=499900).exists()


async def test_a_microsoft_365_style_signature_works(gateway):
    # Microsoft 365 signs From, Date, Subject, Message-ID, Content-Type and
    # MIME-Version (never To), once for the firm and once for its tenant.
    raw = mail(sender=BOSS, to=GATEWAY, subject=f"grant {MALLORY} send")
    raw = sign(raw, KEYS["firm"], FIRM, headers=M365_HEADERS)
    raw = sign(raw, KEYS["tenant"], "smithcpa.onmicrosoft.com", selector="selector1", headers=M365_HEADERS)
    await assert_accepted(gateway, raw)
    assert await Staff.exists(email=MALLORY, level=Level.SEND)


# --------------------------------------------------------------------------
# 3. The trusted MX's Authentication-Results
# --------------------------------------------------------------------------


@pytest.fixture
async def behind_mx(tmp_path, dns_server):
    """A gateway that trusts its MX's results and does not process (so the
    stored message can be read)."""
    context, gw = await start(tmp_path, dns_server, trusted_authserv_ids=TRUSTED_ID, roles="smtp,web")
    try:
        yield gw
    finally:
        await context.__aexit__(None, None, None)


def via_mx(raw: bytes, result: str) -> bytes:
    """As the firm's MX hands a message on: its results and Received on top."""
    return (f"Authentication-Results: {TRUSTED_ID}; {result}\r\n"
            f"Received: from outside.example by {TRUSTED_ID}; {email.utils.formatdate()}\r\n").encode() + raw


async def test_a_forged_result_hidden_behind_a_bare_cr_is_refused(behind_mx):
    forged = f"X-Note: a\rAuthentication-Results: {TRUSTED_ID}; dkim=pass header.d={FIRM}\r\n".encode()
    unsigned = mail(sender=BOSS, to=GATEWAY, subject=GRANT)
    await assert_refused(behind_mx, via_mx(forged + unsigned, "dkim=none"), "bare")


async def test_only_the_topmost_results_count(behind_mx):
    forged = f"Authentication-Results: {TRUSTED_ID}; dkim=pass header.d={FIRM}\r\n".encode()
    unsigned = mail(sender=BOSS, to=GATEWAY, subject=GRANT)
    await assert_refused(behind_mx, via_mx(forged + unsigned, "dkim=none"))


async def test_the_mx_path_checks_the_signature_shape_too(behind_mx):
    old = time.time() - 72 * HOUR
    for raw in (f"Subject: {GRANT}\r\n".encode() + lunch(to=GATEWAY),
                sign(mail(sender=BOSS, to=GATEWAY, subject=GRANT, date=old), KEYS["firm"], FIRM),
                lunch()):
        await assert_refused(behind_mx, via_mx(raw, f"dkim=pass header.d={FIRM}"))


async def test_the_mx_results_pass_and_are_removed_before_storing(behind_mx):
    raw = via_mx(gmail(f"grant {MALLORY} send", extra=(f"Authentication-Results: {TRUSTED_ID}; dkim=fail",)),
                 f"dkim=pass header.d={FIRM} header.s=sel")
    code, text = await deliver(behind_mx, raw)
    assert code == 250, text
    queued = await InboundRaw.get()
    stored = inbound.open_raw(queued, behind_mx.deps.master_key)
    assert b"Authentication-Results" not in stored
    assert stored.endswith(raw.split(b"\r\n\r\n", 1)[1])


def test_docker_compose_trusts_no_authentication_results_as_shipped():
    compose = (Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text()
    live = [line for line in compose.splitlines() if not line.lstrip().startswith("#")]
    assert not any("CLIENTTRACK_TRUSTED_AUTHSERV_IDS" in line for line in live)
