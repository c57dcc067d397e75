"""Signing in to the dashboard from a one-time link, over real HTTP to the
whole gateway: the GET never spends the link, the POST does, once; a used,
expired or unknown link says how to get a new one; each sign-in is logged
and mailed to the member."""

from __future__ import annotations

import hashlib

import httpx

from gateway.core.models import Event, StaffSession, StaffSignIn
from tests.conftest import mails_to, settled
from tests.staff_support import ADMIN, link_for, sign_in
from tests.web_support import base_url, csrf_token

pytest_plugins = ["tests.web_fixtures"]


async def test_opening_the_link_only_shows_a_button_and_the_button_signs_in_once(clocked):
    link = await link_for(clocked)
    path = httpx.URL(link).path
    async with httpx.AsyncClient(base_url=base_url(clocked)) as scanner:
        # A mail scanner follows the link (twice): it sees the page, nothing more.
        for _ in range(2):
            page = await scanner.get(path)
            assert page.status_code == 200
            assert "Sign in" in page.text and ADMIN in page.text and "Demo Accounting" in page.text
    assert await StaffSession.all().count() == 0

    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        done = await sign_in(http, link)
        assert done.status_code == 303 and done.headers["location"] == "/staff/"
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("ct_staff=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/" in cookie and "Secure" not in cookie and "Max-Age" not in cookie
        table = await http.get("/staff/")
        assert table.status_code == 200 and "The firm&#39;s payment requests" in table.text

    async with httpx.AsyncClient(base_url=base_url(clocked)) as other:
        again = await other.get(path)
        assert again.status_code == 410
        assert "has been used, has expired" in again.text
        assert "dashboard" in again.text and "pay@demo.localhost" in again.text
        assert 'href="mailto:pay@demo.localhost?subject=dashboard"' in again.text
        # And its button, posted from a page opened before it was used, does nothing.
        replay = await other.post(path, data={"csrf_token": "x"})
        assert replay.status_code == 410


async def test_an_expired_link_says_how_to_get_a_new_one(clocked, clock):
    link = await link_for(clocked)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        page = await http.get(httpx.URL(link).path)
        clock.advance(minutes=15)
        late = await http.post(httpx.URL(link).path, data={"csrf_token": csrf_token(page)})
        assert late.status_code == 410 and "pay@demo.localhost" in late.text
        assert "15 minutes" in late.text
        assert (await http.get(httpx.URL(link).path)).status_code == 410
    assert await StaffSession.all().count() == 0


async def test_an_unknown_link_is_a_404_that_still_says_what_to_do(clocked):
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        page = await http.get("/staff/sign-in/" + "A" * 43)
        assert page.status_code == 404
        assert "email the word dashboard" in page.text and "pay@" in page.text


async def test_the_button_needs_its_csrf_token_and_a_refusal_does_not_spend_the_link(clocked):
    link = await link_for(clocked)
    path = httpx.URL(link).path
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        page = await http.get(path)
        forged = await http.post(path, data={"csrf_token": "forged"})
        assert forged.status_code == 403 and "Press Sign in again" in forged.text
        elsewhere = await http.post(path, data={"csrf_token": csrf_token(page)},
                                    headers={"sec-fetch-site": "cross-site"})
        assert elsewhere.status_code == 403
        assert (await http.post(path, data={"csrf_token": csrf_token(page)})).status_code == 303


async def test_each_sign_in_is_logged_and_mailed_to_the_member(clocked):
    async with httpx.AsyncClient(base_url=base_url(clocked), headers={
            "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"}) as http:
        assert (await sign_in(http, await link_for(clocked))).status_code == 303
    await settled()
    [notice] = [m for m in mails_to(clocked, ADMIN) if str(m["Subject"]) == "New sign-in to the dashboard"]
    text = notice.get_body(("plain",)).get_content()
    assert "Chrome on Windows" in text and "127.0.0.1" in text and "set your level to none" in text
    event = await Event.get(action="staff.signed_in")
    assert event.actor == ADMIN and event.detail["browser"] == "Chrome on Windows"


async def test_the_token_is_stored_only_as_its_hash(clocked):
    link = await link_for(clocked)
    token = link.rsplit("/", 1)[1]
    [row] = await StaffSignIn.all()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert len(token) == 43  # 256 bits
    assert not await StaffSignIn.filter(token_hash=token).exists()
    events = [e.detail for e in await Event.all()]
    assert token not in repr(events) and token not in repr(await StaffSignIn.all().values())
    assert (row.expires_at - row.created_at).total_seconds() == 15 * 60


async def test_signing_out_ends_the_session(clocked):
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        await sign_in(http, await link_for(clocked))
        table = await http.get("/staff/")
        out = await http.post("/staff/sign-out", data={"csrf_token": csrf_token(table)})
        assert out.status_code == 200 and "You are signed out" in out.text
        assert (await http.get("/staff/")).status_code == 401
    assert await StaffSession.all().count() == 0
