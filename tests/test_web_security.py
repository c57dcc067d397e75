"""Every page: a Content-Security-Policy without inline script, no referrer,
no framing, nothing cached; HSTS only under https."""

from __future__ import annotations

import dataclasses
import re

import httpx

from tests.web_support import PASSWORD, base_url, make_request, submit
from web.app import create_app
from web.security import csp

pytest_plugins = ["tests.web_fixtures"]


def assert_page_headers(response: httpx.Response) -> None:
    headers = response.headers
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy and "stripe" not in policy
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in headers


async def test_every_client_page_sends_the_headers_and_holds_no_inline_script_or_style(clocked):
    made = await make_request(clocked.deps, files=[("a.pdf", "application/pdf", b"%PDF-1.4")])
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        pages = [await http.get(made.path), await submit(http, made.path, "wrong")]
        await submit(http, made.path, PASSWORD)
        pages += [await http.get(made.path), await http.get(f"{made.path}/pay"), await http.get(f"{made.path}/files/1"),
                  await http.get("/r/" + "Q" * 43), await http.get("/nowhere"), await http.get("/robots.txt"),
                  await http.get("/healthz")]
    for page in pages:
        assert_page_headers(page)
        assert page.headers["cache-control"] == "no-store", page.url
        assert not re.search(r"<script|\sstyle=|\son[a-z]+=", page.text, re.I), page.url


async def test_the_style_sheet_may_be_cached(clocked):
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        css = await http.get("/static/style.css")
    assert css.status_code == 200 and "cache-control" not in css.headers
    assert_page_headers(css)


async def test_under_https_pages_add_hsts_and_upgrade_insecure_requests(clocked):
    deps = dataclasses.replace(clocked.deps, settings=dataclasses.replace(
        clocked.deps.settings, base_url="https://pay.example.ca"))
    made = await make_request(deps)
    transport = httpx.ASGITransport(app=create_app(deps))
    async with httpx.AsyncClient(transport=transport, base_url="https://pay.example.ca") as http:
        page = await http.get(made.path)
    assert page.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "upgrade-insecure-requests" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-ct_csrf=") and "Secure" in cookie and "HttpOnly" in cookie


def test_only_the_pay_page_policy_lets_stripe_in():
    assert "stripe" not in csp()
    policy = csp(stripe=True)
    assert "script-src 'self' https://js.stripe.com https://*.js.stripe.com;" in policy
    assert "frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com" in policy
    assert "connect-src 'self' https://api.stripe.com;" in policy and "img-src 'self' data: https://*.stripe.com" in policy
    assert "connect-src 'self' https://api.stripe.com" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
