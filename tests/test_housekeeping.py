"""Requests past their expiry are marked expired; paid ones are left alone."""

from __future__ import annotations

from datetime import timedelta

from gateway import housekeeping
from gateway.core import db
from gateway.admission import replays
from gateway.core.models import AcceptedMessageId, Event, Firm, PaymentRequest, RequestStatus
from tests.test_runner import START
from tests.conftest import database_url


async def make_request(firm, n: int, status: RequestStatus, expires_in: timedelta) -> PaymentRequest:
    return await PaymentRequest.create(
        firm=firm, sender="s@firm.example", client_email="c@client.example", amount_minor=1000, currency="CAD",
        status=status, token_hash=f"{n:064x}", kdf={}, wrapped_key=b"", source_message_id=f"<{n}@x>",
        created_at=START - timedelta(days=30), expires_at=START + expires_in,
    )


async def test_expiry_marks_open_requests_only(tmp_path):
    async with db.opened(database_url(tmp_path)):
        firm = await Firm.create(domain="firm.example", name="F", created_at=START)
        past = await make_request(firm, 1, RequestStatus.SENT, -timedelta(minutes=1))
        viewed = await make_request(firm, 2, RequestStatus.VIEWED, -timedelta(days=1))
        paid = await make_request(firm, 3, RequestStatus.PAID, -timedelta(days=1))
        future = await make_request(firm, 4, RequestStatus.SENT, timedelta(days=1))
        assert await housekeeping.expire_requests(START) == 2
        statuses = {r.id: r.status for r in await PaymentRequest.all()}
        assert statuses == {past.id: RequestStatus.EXPIRED, viewed.id: RequestStatus.EXPIRED,
                            paid.id: RequestStatus.PAID, future.id: RequestStatus.SENT}
        assert await Event.filter(action="request.expired").count() == 2
        assert await housekeeping.expire_requests(START) == 0


async def test_accepted_message_ids_are_forgotten_once_no_fresh_message_can_carry_them(tmp_path):
    window = timedelta(hours=48)
    async with db.opened(f"sqlite://{tmp_path}/t.db"):
        keep = replays.keep_for(window)
        assert keep > window
        for n, age in enumerate((keep + timedelta(minutes=1), keep - timedelta(minutes=1), timedelta(0))):
            await AcceptedMessageId.create(firm_domain="firm.example", digest=f"{n:064x}", accepted_at=START - age)
        assert await replays.forget(START, window) == 1
        assert await AcceptedMessageId.all().count() == 2


async def test_old_sign_in_links_and_idle_staff_sessions_go(tmp_path):
    from gateway.core.models import Level, Staff, StaffSession, StaffSignIn
    from gateway.vault import signin

    async with db.opened(database_url(tmp_path)):
        firm = await Firm.create(domain="firm.example", name="F", created_at=START)
        staff = await Staff.create(firm=firm, email="s@firm.example", level=Level.SEND, created_at=START)
        await signin.new_link(staff, base_url="http://x.example", now=START - timedelta(days=2), actor="t")
        await signin.new_link(staff, base_url="http://x.example", now=START - timedelta(hours=1), actor="t")
        for n, idle in enumerate((timedelta(minutes=31), timedelta(minutes=5))):
            await StaffSession.create(id_hash=f"{n:064x}", staff=staff, firm=firm, created_at=START - idle,
                                      last_seen_at=START - idle)
        assert await signin.forget_old(START) == 2
        # The hour-old link stays a while, so its page can still say "used or expired".
        assert await StaffSignIn.all().count() == 1
        assert [s.id_hash for s in await StaffSession.all()] == [f"{1:064x}"]
