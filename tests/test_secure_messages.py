"""secure@: a secure message without payment, over real loopback SMTP. The
same senders, checks and directives as pay@, less the payment's; status,
cancel, remind and reports treat it as a request of kind message."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import smtplib

import httpx
import pytest

from gateway.core.models import PaymentRequest, RequestKind, RequestStatus, SealedFile
from gateway.vault import sealed
from tests.conftest import CLIENT_THREADS, DEMO_STAFF, mails_to, request_mail, send, settled
from tests.test_flow import only_link
from tests.web_support import csrf_token

SECURE = "secure@demo.localhost"
SUBJECT = 'Your 2025 tax return to=jane@client.example pw=Blue42 hint="First pet"'
PDF = b"%PDF-1.4\n" + hashlib.sha256(b"return").digest() * 4000 + b"\n%%EOF\n"
CSV = "slip,amount\nT4,52000.00\n".encode()


def secure_mail(subject: str = SUBJECT, **kwargs):
    message = request_mail(subject, body="Hello Jane,\nyour return and the slip summary are attached.\n", **kwargs)
    del message["To"]
    message["To"] = SECURE
    return message


async def send_secure(gw, subject: str = SUBJECT, **kwargs) -> None:
    await send(gw, secure_mail(subject, **kwargs), rcpt=SECURE)
    await settled()


async def test_a_secure_message_with_two_files_goes_out_without_an_amount(gateway):
    files = [("return-2025.pdf", "application/pdf", PDF), ("slips.csv", "text/csv", CSV)]
    await send_secure(gateway, attachments=files)

    request = await PaymentRequest.get()
    assert request.kind is RequestKind.MESSAGE and request.amount_minor == 0 and not request.pass_fee
    assert request.title == "Your 2025 tax return" and request.status is RequestStatus.SENT

    [client_mail] = mails_to(gateway, "jane@client.example")
    assert str(client_mail["Subject"]) == "Secure message from Demo Accounting: Your 2025 tax return"
    assert client_mail["From"].addresses[0].addr_spec == SECURE
    assert DEMO_STAFF in str(client_mail["Reply-To"])
    text = " ".join(client_mail.get_body(("plain",)).get_content().split())
    assert "Demo Accounting has sent you a secure message." in text
    assert "$" not in text and "Amount" not in text and "pay" not in text.lower().replace("pay@", "")
    assert "Blue42" not in client_mail.as_string() and not list(client_mail.iter_attachments())

    [confirmation] = mails_to(gateway, DEMO_STAFF)
    assert str(confirmation["Subject"]) == "Sent: secure message to jane@client.example"
    said = " ".join(confirmation.get_body(("plain",)).get_content().split())
    assert "Your secure message to jane@client.example is on its way." in said and "Amount" not in said

    key = sealed.unlock(request, "Blue42")
    stored = {f.filename: await sealed.read_all(f, key, gateway.deps.blobs) for f in await SealedFile.filter(request=request)}
    assert stored["return-2025.pdf"] == PDF and stored["slips.csv"] == CSV

    link = only_link(client_mail)
    async with httpx.AsyncClient(follow_redirects=False) as http:
        page = await http.get(link)
        assert "You have a secure message" in page.text and "Amount due" not in page.text
        form = csrf_token(page)
        opened = await http.post(link, data={"password": "Blue42", "csrf_token": form})
        assert opened.status_code == 303
        message = await http.get(link)
        assert "return-2025.pdf" in message.text and "slips.csv" in message.text
        assert "/pay" not in message.text
        # Nothing to pay: the pay page sends the client back to the message.
        pay = await http.get(link + "/pay")
        assert pay.status_code == 303 and pay.headers["location"].endswith(link.rsplit("/", 1)[1])


@pytest.mark.parametrize("subject, directive", [
    ("Return $1,250.00 to=jane@client.example pw=Tulip77", "amount"),
    ("Return to=jane@client.example pw=Tulip77 +fee", "fee"),
    ("Return to=jane@client.example pw=Tulip77 currency=USD", "currency"),
    ("Return pw=Tulip77", "to"),
])
async def test_what_belongs_to_a_payment_is_named_and_nothing_is_sent(gateway, subject, directive):
    await send_secure(gateway, subject)
    assert await PaymentRequest.all().count() == 0
    [reply] = mails_to(gateway, DEMO_STAFF)
    assert str(reply["Subject"]).endswith("in your secure message")
    body = " ".join(reply.get_body(("plain",)).get_content().split())
    assert re.search(rf"\b{directive}\b", body)
    assert "Your 2025 tax return to=jane@client.example" in body  # the secure@ example, no amount
    assert "send it again to secure@demo.localhost" in body and "tulip77" not in body.lower()


async def test_secure_at_admits_exactly_who_pay_at_admits(gateway):
    stranger = secure_mail(sender="mallory@elsewhere.example")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await send(gateway, stranger, rcpt=SECURE)
    assert refused.value.smtp_code == 550 and b"may not send to secure@demo.localhost" in refused.value.smtp_error

    def both_addresses() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=30) as client:
            client.ehlo()
            client.mail(DEMO_STAFF)
            assert client.rcpt(SECURE)[0] == 250
            return client.rcpt("pay@demo.localhost")

    code, text = await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, both_addresses)
    assert code == 452 and b"pay@ or secure@" in text
    assert await PaymentRequest.all().count() == 0


async def mail(gw, subject: str) -> str:
    before = len(mails_to(gw, DEMO_STAFF))
    await send(gw, request_mail(subject))
    await settled()
    return " ".join(mails_to(gw, DEMO_STAFF)[before].get_body(("plain",)).get_content().split())


async def test_status_cancel_remind_and_reports_treat_it_as_a_message(gateway):
    await send_secure(gateway, 'Engagement letter invoice=EL-7 to=jane@client.example pw=Blue42 hint=Sky')
    await send(gateway, request_mail("Invoice 1042 $1,250.00 to=bob@client.example pw=Blue42"))
    await settled()

    status = await mail(gateway, "status EL-7")
    assert "R1, invoice EL-7, to jane@client.example: secure message, sent." in status
    table = await mail(gateway, "status")
    assert re.search(r"R1\s+EL-7\s+jane@client.example\s+secure message\s+sent", table)

    assert "has been sent the request for invoice EL-7 again" in await mail(gateway, "remind EL-7")
    [first, again] = mails_to(gateway, "jane@client.example")
    assert str(again["Subject"]) == f"Reminder: {first['Subject']}"
    assert only_link(first) == only_link(again)

    before = len(mails_to(gateway, DEMO_STAFF))
    await send(gateway, request_mail("report csv this-month all"))
    await settled()
    report = mails_to(gateway, DEMO_STAFF)[before]
    summary = " ".join(report.get_body(("plain",)).get_content().split())
    assert "Secure messages (no payment, no amounts): 1." in summary and "CAD: 1 request" in summary
    [attachment] = list(report.iter_attachments())
    rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode("utf-8-sig"))))
    by_invoice = {row["Invoice"]: row for row in rows}
    assert by_invoice["EL-7"]["Amount (in Currency)"] == "" and by_invoice["1042"]["Amount (in Currency)"] == "1250.00"

    assert "is cancelled" in await mail(gateway, "cancel EL-7")
    assert (await PaymentRequest.get(invoice="EL-7")).status is RequestStatus.CANCELLED
