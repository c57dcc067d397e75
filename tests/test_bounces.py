"""Mail that comes back: a real Postfix DSN sent over SMTP to a client
mail's bounce address makes the request bounced and tells the staff member;
resend delivers to the corrected address; forged bounce addresses are
refused at RCPT; an out-of-office reply changes nothing and is never
answered."""

from __future__ import annotations

import asyncio
import json
import smtplib
from email.utils import parseaddr
from pathlib import Path

from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import SMTP

from gateway.core.models import Event, Firm, InboundMessage, OutboundMessage, PaymentRequest, RequestKind, \
    RequestStatus
from gateway.reminders import schedule
from gateway.reminders.chase import Chaser
from gateway.reports.grammar import parse_report_args
from gateway.service import running
from gateway.vault import sealed
from gateway.vault.verp import Verp
from tests.conftest import CLIENT_THREADS, DEMO_STAFF, GATEWAY, make_settings, mails_to, outbox_mails, \
    request_mail, send, settled
from tests.test_cli import run as run_cli
from tests.test_flow import only_link

pytest_plugins = ["tests.web_fixtures"]

SAMPLES = Path(__file__).resolve().parent / "data" / "dsn"
PLACEHOLDER = "bounce+1.0000000000000000@demo.localhost"
TYPO = "jane@clinet.example"
RIGHT = "jane@client.example"
SECURE = "secure@demo.localhost"
TORONTO = ZoneInfo("America/Toronto")  # the demo firm's timezone


async def send_raw(gw, raw: bytes, rcpt: str, mail_from: str = "") -> dict:
    """What a remote mail system does: MAIL FROM (null for a DSN), RCPT, DATA."""
    def deliver() -> dict:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as client:
            return client.sendmail(mail_from, [rcpt], raw)
    return await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, deliver)


async def refused_at_rcpt(gw, rcpts: list[str]) -> dict[str, tuple[int, bytes]]:
    def attempt() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as client:
            client.ehlo()
            client.mail("")
            return {rcpt: client.rcpt(rcpt) for rcpt in rcpts}
    return await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, attempt)


def sample(name: str, bounce_address: str, client: str = TYPO) -> bytes:
    return (SAMPLES / name).read_bytes().replace(PLACEHOLDER.encode(), bounce_address.encode()) \
        .replace(TYPO.encode(), client.encode())


async def client_mail(gw, invoice: str, client: str, more: str = ""):
    await send(gw, request_mail(f"Invoice {invoice} $1,250.00 to={client} pw=Blue42 hint=\"First pet\"{more}"))
    await settled()
    [mail] = mails_to(gw, client)
    return mail, parseaddr(str(mail["Return-Path"]))[1]


def text(mail) -> str:
    return " ".join(mail.get_body(("plain",)).get_content().split())


async def test_a_real_dsn_bounces_the_request_the_staff_member_is_told_and_resend_reaches_the_right_address(gateway):
    mail, bounce_address = await client_mail(gateway, "1042", TYPO)
    assert bounce_address.startswith("bounce+") and bounce_address.endswith("@demo.localhost")
    link = only_link(mail)
    request = await PaymentRequest.get(invoice="1042")
    before = len(outbox_mails(gateway))

    assert await send_raw(gateway, sample("postfix-failed.eml", bounce_address), bounce_address) == {}
    await settled()
    request = await PaymentRequest.get(id=request.id)
    assert request.status is RequestStatus.BOUNCED
    [notice] = [m for m in mails_to(gateway, DEMO_STAFF) if str(m["Subject"]).startswith("Not delivered")]
    assert str(notice["Subject"]) == f"Not delivered: invoice 1042 to {TYPO}"
    body = text(notice)
    assert f"did not reach {TYPO}" in body
    assert "550 5.1.1 <jane@clinet.example>: Recipient address rejected: User unknown" in body
    assert "resend 1042 to=corrected@address" in body
    assert len(outbox_mails(gateway)) == before + 1  # that notice, and nothing to anyone else
    listed = await asyncio.to_thread(run_cli, gateway.deps.settings.data_dir, "requests", "list", "--status",
                                     "bounced", "--json", database=gateway.deps.settings.database)
    assert [(r["invoice"], r["status"]) for r in json.loads(listed.stdout)] == [("1042", "bounced")]
    assert parse_report_args(("csv", "this-month", "bounced")).status == "bounced"

    # The same report again (a relay retrying its DSN): no second notice.
    await send_raw(gateway, sample("postfix-failed.eml", bounce_address), bounce_address)
    await settled()
    assert len(outbox_mails(gateway)) == before + 1

    await send(gateway, request_mail(f"resend 1042 to={RIGHT}"))
    await settled()
    [again] = mails_to(gateway, RIGHT)
    assert only_link(again) == link  # the same request, link and password
    new_bounce_address = parseaddr(str(again["Return-Path"]))[1]
    assert new_bounce_address != bounce_address
    request = await PaymentRequest.get(id=request.id)
    assert (request.status, request.client_email) == (RequestStatus.SENT, RIGHT)
    assert sealed.unlock(request, "Blue42")
    [reply] = [m for m in mails_to(gateway, DEMO_STAFF) if str(m["Subject"]).startswith("Resent")]
    assert str(reply["Subject"]) == f"Resent: invoice 1042 to {RIGHT}"
    actions = await Event.filter(request=request).order_by("id").values_list("action", flat=True)
    # The repeated report is recorded, and changed nothing.
    assert actions == ["request.created", "request.bounced", "delivery.failed", "request.resent"]
    listed = await asyncio.to_thread(run_cli, gateway.deps.settings.data_dir, "requests", "list", "--status",
                                     "sent", "--json", database=gateway.deps.settings.database)
    assert [r["client"] for r in json.loads(listed.stdout)] == [RIGHT]

    # A late report about the old address changes nothing now.
    count = len(outbox_mails(gateway))
    await send_raw(gateway, sample("postfix-failed.eml", bounce_address), bounce_address)
    await settled()
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.SENT
    assert len(outbox_mails(gateway)) == count


async def test_forged_bounce_addresses_are_refused_at_rcpt(gateway):
    _mail, bounce_address = await client_mail(gateway, "7", RIGHT)
    outbound_id = int(bounce_address.split("+")[1].split(".")[0])
    mac = bounce_address.split(".")[1].split("@")[0]
    other = "1" if mac[0] != "1" else "2"
    forged = [
        bounce_address.replace(f".{mac}@", f".{other}{mac[1:]}@"),  # one digit of the MAC
        bounce_address.replace(f"+{outbound_id}.", f"+{outbound_id + 1}."),  # another message, this MAC
        bounce_address.replace("@demo.localhost", "@other.example"),
        Verp(b"\0" * 32).address(outbound_id, "demo.localhost"),  # made with another key
        Verp(gateway.deps.master_key).address(99_999, "demo.localhost"),  # a good MAC, no such message
        f"bounce+{outbound_id}@demo.localhost",
    ]
    replies = await refused_at_rcpt(gateway, forged)
    assert {code for code, _ in replies.values()} == {550}, replies
    # One bounce address a transaction, never beside pay@.
    replies = await refused_at_rcpt(gateway, [bounce_address, GATEWAY])
    assert [code for code, _ in replies.values()] == [250, 452]
    replies = await refused_at_rcpt(gateway, [GATEWAY, bounce_address])
    assert [code for code, _ in replies.values()] == [250, 452]
    assert await InboundMessage.filter(firm_domain="demo.localhost", sender="").count() == 0


async def test_an_out_of_office_reply_is_recorded_and_changes_nothing(gateway):
    _mail, bounce_address = await client_mail(gateway, "8", RIGHT)
    before = len(outbox_mails(gateway))
    await send_raw(gateway, sample("gmail-vacation.eml", bounce_address), bounce_address, mail_from=RIGHT)
    await send_raw(gateway, sample("outlook-automatic-reply.eml", bounce_address), bounce_address, mail_from=RIGHT)
    await settled()
    request = await PaymentRequest.get(invoice="8")
    assert request.status is RequestStatus.SENT
    events = await Event.filter(request=request, action="delivery.auto-reply")
    # Two queue workers: in either order.
    assert sorted(e.detail["subject"] for e in events) == ["Out of office until December 14",
                                                           "Réponse automatique : Secure payment request"]
    assert len(outbox_mails(gateway)) == before  # never answered, nobody told


async def test_a_delay_warning_is_recorded_only(gateway):
    _mail, bounce_address = await client_mail(gateway, "9", "slow@client.example")
    before = len(outbox_mails(gateway))
    await send_raw(gateway, sample("postfix-delayed.eml", bounce_address, client="slow@client.example"),
                   bounce_address)
    await settled()
    request = await PaymentRequest.get(invoice="9")
    assert request.status is RequestStatus.SENT
    [event] = await Event.filter(request=request, action="delivery.delayed")
    assert event.detail["status"] == "4.2.0" and "mailbox busy" in event.detail["reason"]
    assert len(outbox_mails(gateway)) == before


async def test_a_bounce_address_takes_a_few_small_reports_then_refuses(gateway):
    _mail, bounce_address = await client_mail(gateway, "10", RIGHT)
    big = sample("gmail-vacation.eml", bounce_address) + (b"y" * 998 + b"\r\n") * 1100  # over a megabyte
    # Said at MAIL FROM (smtplib gives SIZE when the server offers it): refused at RCPT.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await send_raw(gateway, big, bounce_address)
    assert refused.value.recipients[bounce_address][0] == 552

    def unannounced() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
            client.ehlo()
            client.mail("")
            assert client.rcpt(bounce_address)[0] == 250
            return client.data(big)
    # Not said: it goes past the large-message threshold into the blob store during DATA, is refused
    # at its end, and leaves nothing behind.
    code, _said = await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, unannounced)
    assert code == 552
    inbound = gateway.deps.settings.blobs_dir / "inbound"
    assert not inbound.exists() or not list(inbound.iterdir())
    for _ in range(5):
        await send_raw(gateway, sample("gmail-vacation.eml", bounce_address), bounce_address)
    replies = await refused_at_rcpt(gateway, [bounce_address])
    assert replies[bounce_address][0] == 550
    await settled()
    item = await OutboundMessage.get(kind="client-request", rcpt_to=RIGHT)
    assert item.returns == 5


async def test_a_report_past_the_large_message_threshold_is_read_from_the_blob_store(tmp_path):
    # The real DSN (11 kB) is "large" here: its body is stored as it arrives, and read back.
    async with running(make_settings(tmp_path, large_message_bytes=4096)) as gw:
        _mail, bounce_address = await client_mail(gw, "14", TYPO)
        raw = sample("postfix-failed.eml", bounce_address)
        assert len(raw) > 2 * 4096
        assert await send_raw(gw, raw, bounce_address) == {}
        await settled()
        assert (await PaymentRequest.get(invoice="14")).status is RequestStatus.BOUNCED
        [notice] = [m for m in mails_to(gw, DEMO_STAFF) if str(m["Subject"]).startswith("Not delivered")]
        assert "User unknown" in text(notice)
        [queued] = [q for q in await InboundMessage.all() if q.rcpt_tos == [bounce_address]]
        assert queued.size == len(raw) and queued.body_blob == ""  # done: its body left the store
        inbound = gw.deps.settings.blobs_dir / "inbound"
        assert not inbound.exists() or not list(inbound.iterdir())


async def test_a_staff_mail_that_bounces_is_recorded_and_nobody_is_told(gateway):
    await client_mail(gateway, "11", RIGHT)
    [confirmation] = [m for m in mails_to(gateway, DEMO_STAFF) if str(m["Subject"]).startswith("Sent")]
    bounce_address = parseaddr(str(confirmation["Return-Path"]))[1]
    before = len(outbox_mails(gateway))
    await send_raw(gateway, sample("postfix-failed.eml", bounce_address, client=DEMO_STAFF), bounce_address)
    await settled()
    request = await PaymentRequest.get(invoice="11")
    assert request.status is RequestStatus.SENT
    assert await Event.filter(request=request, action="delivery.failed").count() == 1
    assert len(outbox_mails(gateway)) == before  # no notice about a notice: no loops


class RefusingRelay:
    """A relay that refuses one address at RCPT, as a receiving server does."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address == TYPO:
            return "550 5.1.1 <jane@clinet.example>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.delivered.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
        return "250 2.0.0 queued"


async def test_a_relay_refusing_the_clients_address_bounces_the_request_too(tmp_path):
    relay = RefusingRelay()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(relay, hostname="relay.test"),
                                                            "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with running(make_settings(tmp_path, relay_url=f"smtp://127.0.0.1:{port}")) as gw:
            await send(gw, request_mail(f"Invoice 12 $5.00 to={TYPO} pw=Blue42"))
            await settled()
            request = await PaymentRequest.get(invoice="12")
            assert request.status is RequestStatus.BOUNCED
            notices = [raw for _sender, rcpts, raw in relay.delivered
                       if rcpts == [DEMO_STAFF] and b"Subject: Not delivered" in raw]
            assert len(notices) == 1 and b"resend 12 to=3Dcorrected@address" in notices[0]
            # Every message on the wire went with a bounce address of its own.
            senders = [sender for sender, _rcpts, _raw in relay.delivered]
            assert all(s.startswith("bounce+") for s in senders) and len(set(senders)) == len(senders)
    finally:
        server.close()


async def test_resend_is_only_for_a_bounced_request_and_a_new_outside_address(gateway):
    _mail, bounce_address = await client_mail(gateway, "13", TYPO)

    async def answer(subject: str) -> str:
        before = len(mails_to(gateway, DEMO_STAFF))
        await send(gateway, request_mail(subject))
        await settled()
        replies = mails_to(gateway, DEMO_STAFF)
        assert len(replies) == before + 1
        return text(replies[-1])

    assert "not bounced" in await answer(f"resend 13 to={RIGHT}")
    await send_raw(gateway, sample("postfix-failed.eml", bounce_address), bounce_address)
    await settled()
    assert "resend 13 to=corrected@address" in await answer("remind 13")
    assert "is the address that bounced" in await answer(f"resend 13 to={TYPO}")
    assert "gateway's own addresses" in await answer("resend 13 to=pay@demo.localhost")
    assert "Say which address" in await answer("resend 13")
    assert "not a complete email address" in await answer("resend 13 to=jane")
    assert (await PaymentRequest.get(invoice="13")).status is RequestStatus.BOUNCED
    assert "is cancelled" in await answer("cancel 13")


async def secure_message(gw, subject: str, client: str):
    message = request_mail(subject)
    del message["To"]
    message["To"] = SECURE
    await send(gw, message, rcpt=SECURE)
    await settled()
    [mail] = mails_to(gw, client)
    return mail, parseaddr(str(mail["Return-Path"]))[1]


async def test_a_secure_message_bounces_and_is_resent_like_a_payment_request(gateway):
    mail, bounce_address = await secure_message(gateway, f"Your letter invoice=D1 to={TYPO} pw=Blue42 hint=Sky", TYPO)
    link = only_link(mail)
    await send_raw(gateway, sample("postfix-failed.eml", bounce_address), bounce_address)
    await settled()
    request = await PaymentRequest.get(invoice="D1")
    assert (request.kind, request.status) == (RequestKind.MESSAGE, RequestStatus.BOUNCED)
    [notice] = [m for m in mails_to(gateway, DEMO_STAFF) if str(m["Subject"]).startswith("Not delivered")]
    body = text(notice)
    assert f"The secure message \"{request.title}\" (R{request.id}, invoice D1) did not reach {TYPO}" in body
    assert "payment" not in body and "resend D1 to=corrected@address" in body

    await send(gateway, request_mail(f"resend D1 to={RIGHT}"))
    await settled()
    [again] = mails_to(gateway, RIGHT)
    assert only_link(again) == link and str(again["Subject"]) == str(mail["Subject"])
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.SENT
    [reply] = [m for m in mails_to(gateway, DEMO_STAFF) if str(m["Subject"]).startswith("Resent")]
    assert str(reply["Subject"]) == f"Resent: invoice D1 to {RIGHT}"


async def test_the_reminder_schedule_never_chases_a_bounced_address_and_warns_of_its_expiry(clocked, clock):
    gw = clocked
    firm = await Firm.get(domain="demo.localhost")
    await schedule.set_schedule(firm, after=(1,), before=(), now=clock.now, actor="test")
    # Monday 2026-03-02, 10:00 in Toronto; reminders go from 09:00 the firm's time.
    _mail, bounced = await client_mail(gw, "20", TYPO, " expires=3d")
    _mail, resent = await client_mail(gw, "21", "joe@clinet.example")
    await client_mail(gw, "22", RIGHT)
    await send_raw(gw, sample("postfix-failed.eml", bounced), bounced)
    await send_raw(gw, sample("postfix-failed.eml", resent, client="joe@clinet.example"), resent)
    await settled()
    assert {r.invoice: r.status for r in await PaymentRequest.all()} == {
        "20": RequestStatus.BOUNCED, "21": RequestStatus.BOUNCED, "22": RequestStatus.SENT}

    chaser = Chaser(gw.deps)
    sent_first = len(outbox_mails(gw))
    for _hour in range(3 * 24):
        clock.advance(hours=1)
        local = clock.now.astimezone(TORONTO)
        if (local.day, local.hour) == (3, 8):  # corrected the morning the schedule's day comes
            await send(gw, request_mail("resend 21 to=joe@client.example"))
            await settled()
        await chaser.run(clock.now)
    await settled()
    later = outbox_mails(gw)[sent_first:]
    reminded = sorted(str(m["To"]) for m in later if str(m["Subject"]).startswith("Reminder:"))
    # 22 on its day; never 20 (its address bounced); 21 had its mail again that morning: that stands for it.
    assert reminded == [RIGHT]
    digests = [" ".join(m.get_body(("plain",)).get_content().split()) for m in later
               if str(m["Subject"]).startswith("Reminders:")]
    warned = [d for d in digests if "expire tomorrow unpaid" in d]
    assert len(warned) == 1
    request = await PaymentRequest.get(invoice="20")
    assert f"R{request.id} invoice 20 {TYPO}" in warned[0]
    assert f"(bounced: resend R{request.id} to=corrected@address)" in warned[0]
