"""A request's buttons over real HTTP, against requests made by real mail:
each does what the mail command does (same rules, events, notices, mail to
the client and confirmation to the member), and the URL decides who may."""

from __future__ import annotations

import html

import httpx
import pytest

from gateway.core.models import Event, Level, PaymentRequest, RequestStatus
from tests.conftest import mails_to, request_mail, send, settled
from tests.staff_support import ADMIN, colleague, post_form, signed_in
from tests.test_flow import only_link
from tests.test_mailcommands import pay_in_sandbox

pytest_plugins = ["tests.web_fixtures"]
SAM = "sam@demo.localhost"


async def mailed_request(gw, invoice: str, sender: str = ADMIN, client: str = "jane@client.example") -> PaymentRequest:
    await send(gw, request_mail(f"Invoice {invoice} $10.00 to={client} pw=Blue42", sender=sender))
    await settled()
    return await PaymentRequest.get(invoice=invoice)


def flash(page: httpx.Response) -> str:
    start = page.text.index('<p class="notice')
    return html.unescape(page.text[start:page.text.index("</p>", start)])


async def test_remind_sends_the_same_link_again_once_a_day_like_the_command(clocked, clock):
    made = await mailed_request(clocked, "701")
    page = f"/staff/requests/{made.id}"
    async with signed_in(clocked) as http:
        done = await post_form(http, page, f"{page}/remind")
        assert done.status_code == 303 and done.headers["location"] == page
        shown = await http.get(page)
        assert "has been sent the request again" in flash(shown) and 'role="status"' in flash(shown)
        assert "Reminder sent" in shown.text
        assert '<p class="notice' not in (await http.get(page)).text  # said once
        await settled()
        first, again = mails_to(clocked, "jane@client.example")
        assert only_link(again) == only_link(first)
        confirmation = mails_to(clocked, ADMIN)[-1]
        assert str(confirmation["Subject"]) == "Reminded: invoice R%d" % made.id

        await post_form(http, page, f"{page}/remind")
        refused = flash(await http.get(page))
        assert refused.startswith('<p class="notice" role="alert">Not done:') and "once a day" in refused
    assert len(mails_to(clocked, "jane@client.example")) == 2
    assert await Event.filter(action="request.reminded").count() == 1
    events = await Event.filter(action__in=["command", "command.refused"]).order_by("id")
    assert [(e.action, e.detail["command"], e.detail["via"]) for e in events] == [
        ("command", "remind", "dashboard"), ("command.refused", "remind", "dashboard")]


async def test_cancel_asks_first_then_the_link_stops_working_and_the_requester_is_told(clocked):
    await colleague(clocked, SAM, Level.SEND)
    made = await mailed_request(clocked, "601", sender=SAM)
    link = only_link(mails_to(clocked, "jane@client.example")[-1])
    page = f"/staff/requests/{made.id}"
    async with signed_in(clocked) as http:
        asked = await http.get(f"{page}/cancel")
        assert asked.status_code == 200 and "Cancel the request to jane@client.example?" in html.unescape(asked.text)
        assert (await PaymentRequest.get(id=made.id)).status is RequestStatus.SENT
        done = await post_form(http, f"{page}/cancel", f"{page}/cancel")
        assert done.status_code == 303
        assert "is cancelled" in flash(await http.get(page))
    assert (await PaymentRequest.get(id=made.id)).status is RequestStatus.CANCELLED
    await settled()
    [told] = [m for m in mails_to(clocked, SAM) if str(m["Subject"]).startswith("Cancelled")]
    assert ADMIN in told.get_body(("plain",)).get_content()
    async with httpx.AsyncClient() as client:
        assert (await client.get(link)).status_code == 410


async def test_a_send_level_member_cannot_act_on_a_colleagues_request_or_refund_by_url(clocked):
    await colleague(clocked, SAM, Level.SEND)
    theirs = await mailed_request(clocked, "602")
    mine = await mailed_request(clocked, "603", sender=SAM)
    async with signed_in(clocked, SAM) as http:
        for action in ("remind", "cancel"):
            assert (await http.get(f"/staff/requests/{theirs.id}/cancel")).status_code == 404
            attempt = await post_form(http, "/staff/", f"/staff/requests/{theirs.id}/{action}")
            assert attempt.status_code == 404
        for path in (f"/staff/requests/{mine.id}/refund", f"/staff/requests/{theirs.id}/refund"):
            assert (await http.get(path)).status_code == 403
            assert (await post_form(http, "/staff/", path)).status_code == 403
        assert "Refund" not in (await http.get(f"/staff/requests/{mine.id}")).text.split("History")[0]
    assert {r.status for r in await PaymentRequest.all()} == {RequestStatus.SENT}
    assert await Event.filter(action__startswith="command").count() == 0


async def test_a_button_needs_the_sessions_csrf_token(clocked):
    made = await mailed_request(clocked, "604")
    async with signed_in(clocked) as http:
        forged = await http.post(f"/staff/requests/{made.id}/cancel", data={"csrf_token": "forged"})
        assert forged.status_code == 403
    assert (await PaymentRequest.get(id=made.id)).status is RequestStatus.SENT


@pytest.mark.parametrize("amount, status", [("4.00", RequestStatus.PARTIALLY_REFUNDED), ("", RequestStatus.REFUNDED)])
async def test_an_admin_refunds_all_or_part_through_the_provider(clocked, amount, status):
    made = await mailed_request(clocked, "801")
    await pay_in_sandbox(clocked, "801")
    page = f"/staff/requests/{made.id}"
    async with signed_in(clocked) as http:
        asked = await http.get(f"{page}/refund")
        assert "Amount to refund" in asked.text and "$10.00 CAD" in asked.text
        await post_form(http, f"{page}/refund", f"{page}/refund", {"amount": "1.234"})
        assert "The amount to refund" in flash(await http.get(page))
        await post_form(http, f"{page}/refund", f"{page}/refund", {"amount": amount})
        assert "refund to jane@client.example is under way" in flash(await http.get(page))
    assert (await PaymentRequest.get(id=made.id)).status is status
    await settled()
    assert any(str(m["Subject"]) == f"Refund: invoice R{made.id}" for m in mails_to(clocked, ADMIN))
