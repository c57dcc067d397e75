"""Mail commands at each permission level, over real SMTP (demo gateway:
loopback senders are trusted, staff@demo.localhost is the admin)."""

from __future__ import annotations

import httpx
import pytest

from gateway.core import directory
from gateway.core.models import Firm, Level, PaymentRequest, RequestStatus, Staff
from tests.conftest import DEMO_STAFF, mails_to, outbox_mails, request_mail, send, settled
from tests.test_flow import only_link

ADMIN = DEMO_STAFF
SENDER = "sam@demo.localhost"
REPORTER = "rita@demo.localhost"
NOBODY = "nora@demo.localhost"


@pytest.fixture
async def firm(gateway):
    demo = await Firm.get(domain="demo.localhost")
    now = gateway.deps.clock()
    for email, level in ((SENDER, Level.SEND), (REPORTER, Level.REPORT), (NOBODY, Level.NONE)):
        await directory.add_staff(demo, email, level, now=now, actor="test")
    return demo


async def mail(gw, subject: str, sender: str) -> str:
    """Send `subject` as `sender`; the text of the one reply they get."""
    before = len(mails_to(gw, sender))
    await send(gw, request_mail(subject, sender=sender))
    await settled()
    replies = mails_to(gw, sender)
    assert len(replies) == before + 1, [str(m["Subject"]) for m in replies]
    return " ".join(replies[-1].get_body(("plain",)).get_content().split())


async def request(gw, sender: str, invoice: str, client: str = "jane@client.example") -> None:
    await mail(gw, f"Invoice {invoice} $10.00 to={client} pw=Blue42", sender)


@pytest.mark.parametrize("sender, can, cannot", [
    (NOBODY, ["help"], ["status", "report csv", "grant"]),
    (SENDER, ["status 1042", "cancel 1042", "remind 1042"], ["report csv", "grant", "refund"]),
    (REPORTER, ["report csv last-month", "status 1042"], ["grant", "refund"]),
    (ADMIN, ["grant colleague@firm.example send", "revoke", "refund 1042", "setup payments"], []),
])
async def test_help_lists_what_each_level_may_do(gateway, firm, sender, can, cannot):
    body = await mail(gateway, "help", sender)
    for example in can:
        assert example in body
    for example in cannot:
        assert example not in body


@pytest.mark.parametrize("subject, sender, needed", [
    ("Invoice 1 $10.00 to=jane@client.example pw=Blue42", NOBODY, "send"),
    ("status", NOBODY, "send"),
    ("users", SENDER, "admin"),
    ("grant x@demo.localhost send", REPORTER, "admin"),
    ("revoke sam@demo.localhost", SENDER, "admin"),
    ("cancel 1", NOBODY, "send"),
])
async def test_a_sender_without_the_level_is_told_which_level_and_who_the_admins_are(
        gateway, firm, subject, sender, needed):
    body = await mail(gateway, subject, sender)
    assert f'needs level "{needed}"' in body and ADMIN in body
    assert await PaymentRequest.all().count() == 0


async def test_status_shows_own_requests_at_send_and_all_at_report(gateway, firm):
    await request(gateway, SENDER, "501")
    await request(gateway, ADMIN, "502")
    own = await mail(gateway, "status", SENDER)
    assert "501" in own and "502" not in own
    everyone = await mail(gateway, "status", REPORTER)
    assert "501" in everyone and "502" in everyone
    history = await mail(gateway, "status 501", SENDER)
    assert "created" in history and "jane@client.example" in history
    assert "no request of yours with invoice 502" in await mail(gateway, "status 502", SENDER)


async def test_cancel_own_or_any_as_admin_and_the_link_stops_working(gateway, firm):
    await request(gateway, SENDER, "601")
    link = only_link(mails_to(gateway, "jane@client.example")[-1])
    assert "no request of yours with invoice 601" in await mail(gateway, "cancel 601", REPORTER)
    body = await mail(gateway, "cancel 601", ADMIN)
    assert "is cancelled" in body
    assert (await PaymentRequest.get(invoice="601")).status is RequestStatus.CANCELLED
    [told] = [m for m in mails_to(gateway, SENDER) if "Cancelled" in str(m["Subject"])]
    assert ADMIN in told.get_body(("plain",)).get_content()
    async with httpx.AsyncClient() as http:
        assert (await http.get(link)).status_code == 410
    assert "cannot be cancelled" in await mail(gateway, "cancel 601", SENDER)


async def test_grant_then_revoke_a_colleague(gateway, firm):
    colleague = "cole@demo.localhost"
    body = await mail(gateway, f"grant {colleague} send", ADMIN)
    assert f"{colleague} now has level \"send\"" in body
    [welcome] = mails_to(gateway, colleague)
    assert "send" in str(welcome["Subject"])
    await mail(gateway, "Invoice 77 $10.00 to=bob@client.example pw=Blue42", colleague)
    assert len(mails_to(gateway, "bob@client.example")) == 1

    await mail(gateway, f"revoke {colleague}", ADMIN)
    assert "removed" in mails_to(gateway, colleague)[-1].get_body(("plain",)).get_content()
    import smtplib

    with pytest.raises(smtplib.SMTPDataError) as refused:
        await send(gateway, request_mail("Invoice 78 $10.00 to=bob@client.example pw=Blue42", sender=colleague))
    assert refused.value.smtp_code == 550


async def test_users_lists_everyone_and_the_last_admin_cannot_be_removed(gateway, firm):
    body = await mail(gateway, "users", ADMIN)
    for email in (ADMIN, SENDER, REPORTER, NOBODY):
        assert email in body
    assert "only admin" in await mail(gateway, f"revoke {ADMIN}", ADMIN)
    assert "only admin" in await mail(gateway, f"grant {ADMIN} send", ADMIN)
    assert await Staff.get(email=ADMIN).values_list("level", flat=True) == Level.ADMIN


async def test_grant_with_a_wrong_level_names_it(gateway, firm):
    body = await mail(gateway, "grant x@demo.localhost boss", ADMIN)
    assert "unknown level 'boss'" in body.lower() and "none, send, report or admin" in body
    assert not await Staff.exists(email="x@demo.localhost")
    assert len(outbox_mails(gateway)) == 1


async def test_remind_sends_the_same_link_once_a_day(gateway, firm):
    await request(gateway, SENDER, "701")
    [first] = mails_to(gateway, "jane@client.example")
    body = await mail(gateway, "remind 701", SENDER)
    assert "sent the request for invoice 701 again" in body
    first_mail, again = mails_to(gateway, "jane@client.example")
    assert only_link(again) == only_link(first)
    assert "once a day" in await mail(gateway, "remind 701", SENDER)
    assert len(mails_to(gateway, "jane@client.example")) == 2


async def pay_in_sandbox(gw, invoice: str) -> PaymentRequest:
    from gateway.payments import ledger
    from gateway.payments.provider import PayAttempt

    request = await PaymentRequest.get(invoice=invoice)
    outcome = await ledger.pay(request, PayAttempt(card_number="4242 4242 4242 4242"), gw.deps.payments, gw.deps)
    if outcome.outcome == "confirm_amount":  # the client approves the total for this card
        await ledger.pay(request, PayAttempt(card_number="4242 4242 4242 4242",
                                             approved_total=outcome.quote.total_minor), gw.deps.payments, gw.deps)
    await settled()
    return await PaymentRequest.get(invoice=invoice)


async def test_refund_in_full_or_in_part_as_admin(gateway, firm):
    await request(gateway, SENDER, "801")
    assert "only a paid request can be refunded" in await mail(gateway, "refund 801", ADMIN)
    paid = await pay_in_sandbox(gateway, "801")
    assert paid.status is RequestStatus.PAID
    assert 'needs level "admin"' in await mail(gateway, "refund 801", SENDER)
    assert "The amount to refund" in await mail(gateway, "refund 801 1.234", ADMIN)
    assert "$4.00 CAD of invoice 801 is being refunded" in await mail(gateway, "refund 801 4.00", ADMIN)
    assert (await PaymentRequest.get(invoice="801")).status is RequestStatus.PARTIALLY_REFUNDED
    assert "$6.00 CAD of invoice 801 is being refunded" in await mail(gateway, "refund 801", ADMIN)
    assert (await PaymentRequest.get(invoice="801")).status is RequestStatus.REFUNDED


async def test_an_admin_records_the_firms_surcharge_notice_by_mail(gateway, firm):
    from gateway.core.models import Firm

    body = await mail(gateway, "surcharge notice 2026-01-05", ADMIN)
    assert "Surcharge notice: given 2026-01-05; +fee works s" in body and "2026-02-04" in body
    assert str((await Firm.get(domain=firm.domain)).surcharge_notice_date) == "2026-01-05"
    assert "not a date" in await mail(gateway, "surcharge notice 05/01/2026", ADMIN)
    refused = await mail(gateway, "surcharge notice 2026-01-05", SENDER)
    assert "admin" in refused and str((await Firm.get(domain=firm.domain)).surcharge_notice_date) == "2026-01-05"


async def test_setup_payments_needs_stripe_and_says_so(gateway, firm):
    body = await mail(gateway, "setup payments", ADMIN)
    assert "Stripe is not set up on this gateway" in body
    assert "Did you mean" in await mail(gateway, "setup paymnts", ADMIN)


async def test_report_by_mail_comes_back_attached(gateway, firm):
    await request(gateway, SENDER, "901")
    await send(gateway, request_mail("report csv this-month all", sender=REPORTER))
    await settled()
    reply = mails_to(gateway, REPORTER)[-1]
    [attachment] = list(reply.iter_attachments())
    assert attachment.get_filename().endswith(".csv")
    content = attachment.get_content()
    text = content if isinstance(content, str) else content.decode("utf-8-sig")
    assert "901" in text and "jane@client.example" in text
    wrong = await mail(gateway, "report pdf last-month", REPORTER)
    assert "pdf" in wrong and "xlsx" in wrong
    assert 'needs level "report"' in await mail(gateway, "report csv last-month", SENDER)


async def test_dashboard_or_login_mails_a_one_time_sign_in_link(gateway, firm):
    import re

    from tests.staff_support import LINK, sign_in

    body = await mail(gateway, "dashboard", SENDER)
    assert "sign in to Demo Accounting's dashboard as sam@demo.localhost" in body and "within 15 minutes" in body
    [link] = LINK.findall(body)
    again = await mail(gateway, "Re: LOGIN", SENDER)
    [other] = LINK.findall(again)
    assert other != link
    async with httpx.AsyncClient() as http:
        assert (await sign_in(http, link)).status_code == 303
        assert (await http.get(re.sub(r"/staff/.*", "/staff/", link))).status_code == 200
    assert 'needs level "send"' in await mail(gateway, "login", NOBODY)
    assert "dashboard" in await mail(gateway, "help", SENDER)
