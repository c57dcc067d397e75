"""What the staff member is told when a request locks or is opened."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.models import PaymentRequest, Staff
from tests.conftest import mails_to, settled
from tests.web_support import make_request
from web import notify

pytest_plugins = ["tests.web_fixtures"]


async def test_notices_go_to_the_sender_in_the_firm_s_time_even_once_the_staff_row_is_gone(clocked, clock):
    made = await make_request(clocked.deps)
    await Staff.filter(id=made.request.staff_id).update(email="left@demo.localhost")
    request = await PaymentRequest.filter(id=made.request.id).select_related("firm", "staff").get()
    await notify.locked(clocked.deps, request, 5, clock() + timedelta(minutes=15), clock())
    request.staff = None
    await notify.viewed(clocked.deps, request, clock())
    clocked.deps.outbox_wake.set()
    await settled()
    [locked] = mails_to(clocked, "left@demo.localhost")
    [viewed] = mails_to(clocked, "staff@demo.localhost")
    text = locked.get_body(("plain",)).get_content()
    assert "5 times" in text and "15 minutes" in text and "2026-03-02 10:15 EST" in text
    assert "invoice 1042, $1,250.00 CAD" in text
    assert "jane@client.example opened" in viewed.get_body(("plain",)).get_content()
    assert "Demo Accounting" in str(viewed["From"]) or "pay@demo.localhost" in str(viewed["From"])
