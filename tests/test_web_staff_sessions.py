"""Dashboard sessions over real HTTP: idle and absolute timeouts, the end
of every session when a member loses access, CSRF on forms, and the
https cookie rules."""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from gateway.core import directory
from gateway.core.models import Firm, Level, Staff, StaffSession
from tests.staff_support import ADMIN, colleague, signed_in
from tests.web_support import csrf_token
from web.csrf import Csrf
from web.staff.sessions import StaffSessions

pytest_plugins = ["tests.web_fixtures"]


async def test_a_session_ends_after_30_idle_minutes(clocked, clock):
    async with signed_in(clocked) as http:
        clock.advance(minutes=29)
        assert (await http.get("/staff/")).status_code == 200
        clock.advance(minutes=29)  # idle time counts from the last page
        assert (await http.get("/staff/")).status_code == 200
        clock.advance(minutes=30)
        page = await http.get("/staff/")
        assert page.status_code == 401 and "30 minutes without use" in page.text
    assert await StaffSession.all().count() == 0


async def test_a_session_ends_12_hours_after_sign_in_however_busy(clocked, clock):
    async with signed_in(clocked) as http:
        for _ in range(11 * 4 + 3):  # a page every 15 minutes for 11 h 45
            clock.advance(minutes=15)
            assert (await http.get("/staff/")).status_code == 200
        clock.advance(minutes=15)
        assert (await http.get("/staff/")).status_code == 401


async def test_level_none_or_removal_ends_every_session_at_once(clocked):
    await colleague(clocked, "ann@demo.localhost", Level.SEND)
    firm = await Firm.get(domain="demo.localhost")
    async with signed_in(clocked, "ann@demo.localhost") as phone, signed_in(clocked, "ann@demo.localhost") as laptop:
        assert await StaffSession.filter(staff__email="ann@demo.localhost").count() == 2
        await directory.set_level(firm, "ann@demo.localhost", Level.NONE, now=clocked.deps.clock(), actor=ADMIN)
        assert await StaffSession.filter(staff__email="ann@demo.localhost").count() == 0
        assert (await phone.get("/staff/")).status_code == 401
        assert (await laptop.get("/staff/")).status_code == 401

    await directory.set_level(firm, "ann@demo.localhost", Level.SEND, now=clocked.deps.clock(), actor=ADMIN)
    async with signed_in(clocked, "ann@demo.localhost") as http:
        await directory.remove_staff(firm, "ann@demo.localhost", now=clocked.deps.clock(), actor=ADMIN)
        assert (await http.get("/staff/")).status_code == 401
    assert await StaffSession.all().count() == 0


async def test_a_level_set_to_none_behind_the_gateways_back_still_ends_the_session(clocked):
    await colleague(clocked, "bo@demo.localhost", Level.REPORT)
    async with signed_in(clocked, "bo@demo.localhost") as http:
        await Staff.filter(email="bo@demo.localhost").update(level=Level.NONE)
        assert (await http.get("/staff/")).status_code == 401
    assert await StaffSession.all().count() == 0


async def test_forms_need_this_sessions_csrf_token_and_our_own_site(clocked):
    async with signed_in(clocked) as http, signed_in(clocked) as other:
        mine = csrf_token(await http.get("/staff/"))
        theirs = csrf_token(await other.get("/staff/"))
        assert mine != theirs
        assert (await http.post("/staff/sign-out", data={"csrf_token": theirs})).status_code == 403
        assert (await http.post("/staff/sign-out", data={"csrf_token": mine},
                                headers={"origin": "https://evil.example"})).status_code == 403
        assert (await http.get("/staff/")).status_code == 200  # still signed in
        assert (await http.post("/staff/sign-out", data={"csrf_token": mine})).status_code == 200


async def test_under_https_the_cookie_is_host_only_and_secure(clocked, clock):
    sessions = StaffSessions(Csrf(clocked.deps.master_key, base_url="https://pay.example", secure=True), secure=True)
    assert sessions.cookie == "__Host-ct_staff"
    staff = await Staff.get(email=ADMIN)
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": Headers({}).raw})
    session_id = await sessions.start(request, staff, clock())
    response = Response()
    sessions.set_cookie(response, session_id)
    header = dict(response.raw_headers)[b"set-cookie"].decode()
    assert header.startswith("__Host-ct_staff=") and "; Secure" in header and "HttpOnly" in header
    assert "SameSite=strict" in header and "Path=/" in header and "Domain" not in header
    row = await StaffSession.get()
    assert row.id_hash == hashlib.sha256(session_id.encode()).hexdigest()
