"""A POST must carry its form's token and come from our own pages."""

from __future__ import annotations

import httpx
from starlette.datastructures import FormData, Headers
from starlette.requests import Request

from gateway.core.models import ClientSession, UnlockGuard
from tests.web_support import PASSWORD, base_url, csrf_token, make_request
from web.csrf import FIELD, Csrf

KEY = bytes(range(32))

pytest_plugins = ["tests.web_fixtures"]


def fake_request(headers: dict[str, str], cookie: str = "") -> Request:
    raw = {**headers, **({"cookie": f"ct_csrf={cookie}"} if cookie else {}), "host": "pay.example.ca"}
    scope = {"type": "http", "method": "POST", "path": "/r/x", "scheme": "https", "query_string": b"",
             "headers": Headers(raw).raw, "server": ("pay.example.ca", 443)}
    return Request(scope)


def test_a_token_fits_one_browser_and_one_form():
    csrf = Csrf(KEY, base_url="https://pay.example.ca", secure=False)
    cookie, new = csrf.cookie_for(fake_request({}))
    assert new and len(cookie) == 43
    token = csrf.token(cookie, "unlock:a")
    assert token == csrf.token(cookie, "unlock:a")
    assert token != csrf.token(cookie, "unlock:b") and token != csrf.token("B" * 43, "unlock:a")
    assert token != Csrf(bytes(32), base_url="https://pay.example.ca", secure=False).token(cookie, "unlock:a")
    assert csrf.valid(fake_request({}, cookie), FormData({FIELD: token}), "unlock:a")
    assert not csrf.valid(fake_request({}, cookie), FormData({FIELD: token}), "unlock:b")
    assert not csrf.valid(fake_request({}), FormData({FIELD: token}), "unlock:a")
    assert not csrf.valid(fake_request({}, cookie), FormData({}), "unlock:a")


def test_the_browser_saying_where_a_post_came_from_is_believed():
    csrf = Csrf(KEY, base_url="https://pay.example.ca", secure=True)
    assert csrf.cookie == "__Host-ct_csrf"
    assert csrf.same_site(fake_request({}))  # an old browser, or no browser: the token decides
    assert csrf.same_site(fake_request({"sec-fetch-site": "same-origin", "origin": "https://pay.example.ca"}))
    assert not csrf.same_site(fake_request({"sec-fetch-site": "same-site"}))
    assert not csrf.same_site(fake_request({"sec-fetch-site": "cross-site"}))
    assert not csrf.same_site(fake_request({"origin": "https://evil.example"}))
    # What Chrome sends on our own form under Referrer-Policy: no-referrer.
    assert csrf.same_site(fake_request({"sec-fetch-site": "same-origin", "origin": "null"}))
    assert not csrf.same_site(fake_request({"sec-fetch-site": "cross-site", "origin": "null"}))


async def test_a_cross_site_post_is_refused_and_costs_no_try(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        token = csrf_token(await http.get(made.path))
        form = {"password": PASSWORD, "csrf_token": token}
        for headers in ({"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
                        {"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
            refused = await http.post(made.path, data=form, headers=headers)
            assert refused.status_code == 403 and 'name="password"' in refused.text
        assert (await http.post(made.path, data={"password": PASSWORD})).status_code == 403
        forged = ("B" if token[0] != "B" else "C") + token[1:]
        assert (await http.post(made.path, data={"password": PASSWORD, "csrf_token": forged})).status_code == 403
        assert await ClientSession.all().count() == 0
        assert not await UnlockGuard.filter(request_id=made.request.id, window_tries__gt=0).exists()
        ok = await http.post(made.path, data=form, headers={"origin": base_url(clocked),
                                                            "sec-fetch-site": "same-origin"})
        assert ok.status_code == 303


async def test_a_token_from_another_request_or_another_browser_does_not_work(clocked):
    first, second = await make_request(clocked.deps), await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http, \
            httpx.AsyncClient(base_url=base_url(clocked)) as other:
        token = csrf_token(await http.get(first.path))
        await http.get(second.path)
        assert (await http.post(second.path, data={"password": PASSWORD, "csrf_token": token})).status_code == 403
        await other.get(first.path)
        assert (await other.post(first.path, data={"password": PASSWORD, "csrf_token": token})).status_code == 403


async def test_locking_again_needs_the_token_too(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        form = await http.get(made.path)
        await http.post(made.path, data={"password": PASSWORD, "csrf_token": csrf_token(form)})
        refused = await http.post(f"{made.path}/lock", data={}, headers={"origin": "https://evil.example"})
        assert refused.status_code == 403
        assert await ClientSession.all().count() == 1


async def test_an_oversized_form_is_refused_unread(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        big = await http.post(made.path, data={"password": "x" * 20_000})
    assert big.status_code == 413
