"""Mail in, secure request out: the whole path over real loopback SMTP."""

from __future__ import annotations

import asyncio
import hashlib
import re
import smtplib

import httpx
import pytest

from gateway.core.models import Firm, InboundMessage, InboundRaw, InboundStatus, PaymentRequest, SealedFile
from gateway.vault import sealed
from tests.conftest import DEMO_STAFF, GATEWAY, mails_to, outbox_mails, request_mail, send, settled
from tests.tnef import winmail

SUBJECT = 'Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint="Dog\'s name" +fee'
PDF = b"%PDF-1.4\n" + hashlib.sha256(b"invoice").digest() * 500 + b"\n%%EOF\n"
LINK = re.compile(r"https?://[^\s\"<>]+/r/[A-Za-z0-9_-]{43}")


def only_link(mail) -> str:
    links = set(LINK.findall(mail.get_body(("plain",)).get_content()))
    assert len(links) == 1, links
    return links.pop()


async def files_of(gw, request: PaymentRequest, password: str) -> dict[str, bytes]:
    key = sealed.unlock(request, password)
    files = await SealedFile.filter(request=request).order_by("position")
    return {f.filename: await sealed.read_all(f, key, gw.deps.blobs) for f in files}


async def test_request_goes_out_to_the_client_and_is_confirmed_to_the_sender(gateway):
    await send(gateway, request_mail(SUBJECT, attachments=[("invoice-1042.pdf", "application/pdf", PDF)]))
    await settled()

    request = await PaymentRequest.get()
    assert (request.amount_minor, request.currency, request.invoice) == (125000, "CAD", "1042")
    assert request.client_email == "jane@client.example" and request.pass_fee
    assert request.hint == "Dog's name" and request.status.value == "sent"

    [client_mail] = mails_to(gateway, "jane@client.example")
    assert "Demo Accounting" in str(client_mail["From"]) and "pay@demo.localhost" in str(client_mail["From"])
    assert DEMO_STAFF in str(client_mail["Reply-To"])
    text = client_mail.get_body(("plain",)).get_content()
    assert "$1,250.00" in text and "Dog's name" in text
    # +fee: the client's mail names the card fee before they open it.
    assert " ".join(text.split()).count("Card fee: Paying by credit card adds a card fee of $30.00 CAD "
                                        "(total $1,280.00 CAD); none on debit or prepaid cards") == 1
    assert "Blue42" not in client_mail.as_string()
    assert not list(client_mail.iter_attachments())
    link = only_link(client_mail)

    [confirmation] = mails_to(gateway, DEMO_STAFF)
    assert "jane@client.example" in confirmation.get_body(("plain",)).get_content()
    assert "Card fee: passed on to the client" in " ".join(confirmation.get_body(("plain",)).get_content().split())

    async with httpx.AsyncClient() as http:
        page = await http.get(link)
    assert page.status_code == 200
    assert "Demo Accounting" in page.text and "Dog&#39;s name" in page.text and 'name="password"' in page.text

    files = await files_of(gateway, request, "Blue42")
    assert files["invoice-1042.pdf"] == PDF
    assert "your invoice is attached" in files["message.txt"].decode()


async def test_plus_fee_before_the_firms_network_notice_goes_out_without_the_fee_and_says_why(gateway):
    await Firm.filter(domain="demo.localhost").update(surcharge_notice_date=None)
    await send(gateway, request_mail(SUBJECT))
    await settled()
    request = await PaymentRequest.get()
    assert request.status.value == "sent" and not request.pass_fee  # it went out, without the fee
    [client_mail] = mails_to(gateway, "jane@client.example")
    assert "Card fee" not in client_mail.get_body(("plain",)).get_content()
    [confirmation] = mails_to(gateway, DEMO_STAFF)
    said = " ".join(confirmation.get_body(("plain",)).get_content().split())
    assert "The card fee (+fee) was not added: card networks require a firm to give them notice 30 days" in said


async def test_the_raw_message_is_deleted_once_processed(gateway):
    await send(gateway, request_mail(SUBJECT))
    await settled()
    queued = await InboundMessage.get()
    assert queued.status is InboundStatus.DONE and not await InboundRaw.exists()


BAD_SUBJECTS = [
    ("Invoice 1042 to=jane@client.example pw=Tulip77", "amount"),
    ("$12.345 to=jane@client.example pw=Tulip77", "amount"),
    ("$0 to=jane@client.example pw=Tulip77", "amount"),
    ("amount=-5 to=jane@client.example pw=Tulip77", "amount"),
    ("$1,00.00 to=jane@client.example pw=Tulip77", "amount"),
    ("amount=10 currency=XYZ to=jane@client.example pw=Tulip77", "currency"),
    ("$10 to=jane@client.example to=bob@client.example pw=Tulip77", "to"),
    ("$10 to=jane@ pw=Tulip77", "to"),
    ("$10 to=jane@client.example", "pw"),
    ("$10 to=jane@client.example pw=Tulip77 hint=tulip77isit", "hint"),
    ("$200,000.00 to=jane@client.example pw=Tulip77", "amount"),
]


@pytest.mark.parametrize("subject, directive", BAD_SUBJECTS)
async def test_each_bad_input_gets_a_reply_naming_it_and_creates_nothing(gateway, subject, directive):
    await send(gateway, request_mail(subject))
    await settled()
    assert await PaymentRequest.all().count() == 0
    assert not mails_to(gateway, "client.example")
    [reply] = mails_to(gateway, DEMO_STAFF)
    body = reply.get_body(("plain",)).get_content()
    assert re.search(rf"\b{directive}\b", body), body
    assert "Invoice 1042 $1,250.00 to=jane@client.example" in body  # a correct example
    assert "tulip77" not in body.lower()


@pytest.mark.parametrize("subject, body", [
    ("Invoice 7 $10 to=Secret99 pw=Secret99", ""),
    ("Invoice 7 $10 to=secret99@ pw=SECRET99 hint=Sky", ""),
    ("Invoice Secret99 $10 to=jane@", "Password: Secret99\n\nHello Jane,\n"),
])
async def test_no_reply_ever_holds_the_password_wherever_it_was_repeated(gateway, subject, body):
    await send(gateway, request_mail(subject, body=body or "Hello Jane,\n"))
    await settled()
    [reply] = mails_to(gateway, DEMO_STAFF)
    whole = reply.as_string() + "".join(part.get_content() for part in reply.walk() if part.get_content_maintype()
                                        == "text")
    assert "secret99" not in whole.lower()
    assert "***" in whole


async def test_an_expiry_past_the_cap_gets_a_reply_in_a_zone_east_of_utc_too(gateway):
    await Firm.filter(domain="demo.localhost").update(timezone="Asia/Tokyo")
    for expiry in ("9999-12-31", "400d", "0001-01-01"):
        await send(gateway, request_mail(f"Invoice 7 $10 to=jane@client.example pw=Tulip77 expires={expiry}"))
    await settled()
    assert await PaymentRequest.all().count() == 0
    assert await InboundMessage.filter(status=InboundStatus.QUARANTINED).count() == 0
    replies = mails_to(gateway, DEMO_STAFF)
    assert len(replies) == 3
    for reply in replies:
        assert re.search(r"\bexpires\b", reply.get_body(("plain",)).get_content())


@pytest.mark.parametrize("subject, directive", [
    (f'Invoice 7 $10 to=jane@client.example pw=Tulip77 hint="{"h" * 201}"', "hint"),
    ("Invoice 7 $10 to=jane@client.example pw=Tulip77 " + "word " * 70, "subject"),
])
async def test_an_over_long_directive_gets_a_reply_naming_it(gateway, subject, directive):
    await send(gateway, request_mail(subject))
    await settled()
    assert await PaymentRequest.all().count() == 0
    assert await InboundMessage.filter(status=InboundStatus.QUARANTINED).count() == 0
    [reply] = mails_to(gateway, DEMO_STAFF)
    body = reply.get_body(("plain",)).get_content()
    assert re.search(rf"\b{directive}\b", body) and "at most" in body, body


async def send_raw(gw, raw: bytes) -> None:
    def deliver() -> None:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as client:
            client.sendmail(DEMO_STAFF, [GATEWAY], raw)
    await asyncio.to_thread(deliver)


@pytest.mark.parametrize("long", ["message-id", "content-type"])
async def test_an_over_long_message_id_or_content_type_is_bounded_where_read(gateway, long):
    message = request_mail("Invoice 7 $10 to=jane@client.example pw=Tulip77",
                           attachments=[("a.pdf", "application/pdf", b"%PDF-1.4")])
    if long == "content-type":
        [attachment] = list(message.iter_attachments())
        attachment.replace_header("Content-Type", "application/x-" + "y" * 300)
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    if long == "message-id":  # folded over two lines: SMTP takes lines of at most 998 octets
        long_id = b"<" + b"m" * 600 + b"\r\n " + b"m" * 600 + b"@demo.localhost>"
        raw = re.sub(rb"Message-ID: [^\r]*", lambda _: b"Message-ID: " + long_id, raw, count=1)
    await send_raw(gateway, raw)
    await settled()
    assert await InboundMessage.filter(status=InboundStatus.QUARANTINED).count() == 0
    [request] = await PaymentRequest.all()
    assert len(request.source_message_id) <= 998
    files = await SealedFile.filter(request=request, is_body=False)
    expected = "application/octet-stream" if long == "content-type" else "application/pdf"
    assert [f.content_type for f in files] == [expected]
    await send_raw(gateway, raw)  # the same message again: still a duplicate
    await settled()
    assert await PaymentRequest.all().count() == 1


async def test_a_redelivered_message_makes_one_request(gateway):
    message = request_mail(SUBJECT)
    await send(gateway, message)
    await send(gateway, message)
    await settled()
    assert await PaymentRequest.all().count() == 1
    assert len(mails_to(gateway, "jane@client.example")) == 1


async def test_auto_replies_are_never_answered(gateway):
    message = request_mail("Out of office")
    message["Auto-Submitted"] = "auto-replied"
    await send(gateway, message)
    await settled()
    assert outbox_mails(gateway) == []


async def test_help_command_answers_with_what_the_sender_may_do(gateway):
    await send(gateway, request_mail("help"))
    await settled()
    [reply] = mails_to(gateway, DEMO_STAFF)
    body = reply.get_body(("plain",)).get_content()
    assert "admin" in body and "report csv last-month" in body


async def test_winmail_dat_yields_the_pdf_inside(gateway):
    tnef = winmail([("invoice-1042.pdf", PDF)])
    await send(gateway, request_mail(SUBJECT, attachments=[("winmail.dat", "application/ms-tnef", tnef)]))
    await settled()
    files = await files_of(gateway, await PaymentRequest.get(), "Blue42")
    assert files["invoice-1042.pdf"] == PDF
    assert "winmail.dat" not in files


async def test_non_ascii_file_names_and_subjects_survive(gateway):
    subject = "Facture n° 1042 — été $99.95 to=jane@client.example pw=Blue42"
    name = "Facture_été_請求書.pdf"
    await send(gateway, request_mail(subject, attachments=[(name, "application/pdf", PDF)]))
    await settled()
    request = await PaymentRequest.get()
    assert "été" in request.title
    files = await files_of(gateway, request, "Blue42")
    assert files[name] == PDF
    [client_mail] = mails_to(gateway, "jane@client.example")
    assert "été" in str(client_mail["Subject"])


async def test_twenty_messages_at_once_all_become_requests(gateway):
    messages = [request_mail(f"Invoice {n} $10.00 to=client{n}@client.example pw=Blue42") for n in range(20)]
    results = await asyncio.gather(*(send(gateway, m) for m in messages))
    assert all(r == {} for r in results)
    await settled(timeout=60)
    assert await PaymentRequest.all().count() == 20
    assert len(mails_to(gateway, "client.example")) == 20


async def test_the_password_is_nowhere_in_the_database_or_the_logs(gateway, caplog):
    caplog.set_level("DEBUG")
    secret = "Zq9-Unmistakable-Secret"
    await send(gateway, request_mail(f"$10 to=jane@client.example pw={secret} hint=Sky"))
    await send(gateway, request_mail(f"$10 to=jane@client.example pw={secret} hint={secret}"))  # rejected
    await settled()
    assert await PaymentRequest.all().count() == 1
    data_dir = gateway.deps.settings.data_dir
    for path in data_dir.glob("clienttrack.db*"):
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in caplog.text
    for mail in mails_to(gateway, "jane@client.example"):
        assert secret not in mail.as_string()
