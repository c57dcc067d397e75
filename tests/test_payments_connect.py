"""Firm onboarding: signed setup tokens, and the refresh and return URLs
served by the web app (Stripe side from recorded responses)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from gateway.core import db
from gateway.core.models import Event, Firm
from gateway.payments import connect
from gateway.payments.stripe_provider import StripeProvider
from gateway.payments.web_routes import routes
from tests.conftest import database_url
from tests.payments_support import RecordedStripe, make_deps, serve

RECORDED = Path(__file__).resolve().parent / "data" / "stripe"
ACCOUNT = "acct_1QcT7yPf3kZ2mN8a"
KEY = bytes(range(32))
NOW = datetime(2026, 3, 5, 15, 0, tzinfo=timezone.utc)


def test_setup_tokens_name_the_firm_and_expire():
    token = connect.onboarding_token(KEY, 7, NOW)
    assert connect.read_token(KEY, token, NOW) == 7
    assert connect.read_token(KEY, token, NOW + connect.TOKEN_TTL - timedelta(seconds=1)) == 7
    assert connect.read_token(KEY, token, NOW + connect.TOKEN_TTL + timedelta(seconds=1)) is None
    assert connect.read_token(bytes(32), token, NOW) is None  # another gateway's key
    firm_id, expires, signature = token.split(".")
    assert connect.read_token(KEY, f"8.{expires}.{signature}", NOW) is None
    assert connect.read_token(KEY, f"{firm_id}.{int(expires) + 999}.{signature}", NOW) is None
    for junk in ("", "7", "a.b.c", "7.x.y", "...."):
        assert connect.read_token(KEY, junk, NOW) is None


def test_pay_domain_for_wallets():
    assert connect.pay_domain("https://pay.clienttrack.ca") == "pay.clienttrack.ca"
    assert connect.pay_domain("https://Pay.ClientTrack.ca:8443/x") == "pay.clienttrack.ca"
    for local in ("http://localhost:8000", "http://127.0.0.1:8000", "http://demo.localhost", "http://[::1]:80"):
        assert connect.pay_domain(local) is None


@pytest.fixture
async def site(tmp_path):
    fake = RecordedStripe(RECORDED)
    async with db.opened(database_url(tmp_path)), fake.running() as stripe_url:
        deps = make_deps(tmp_path, stripe_secret_key="sk_test_recorded", stripe_api_base=stripe_url,
                         base_url="https://pay.clienttrack.ca")
        app = Starlette(routes=routes())
        app.state.deps = deps  # the provider is built from the settings, as in production
        async with serve(app) as url:
            firm = await Firm.create(domain="firm.example", name="Maple Accounting", stripe_account_id=ACCOUNT,
                                     created_at=NOW)
            yield deps, firm, url, fake, app


async def test_the_refresh_url_mints_a_fresh_link(site):
    deps, firm, url, fake, app = site
    fake.answer("POST /v1/account_links", "account_link.json")
    token = connect.onboarding_token(deps.master_key, firm.id, deps.clock())
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{url}{connect.REFRESH_PATH}", params={"t": token})
        forged = await http.get(f"{url}{connect.REFRESH_PATH}", params={"t": token[:-2] + "xx"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "https://connect.stripe.com/setup/s/acct_1QcT7yPf3kZ2mN8a/Jq3rS8tU2vWx"
    assert forged.status_code == 404
    assert len(fake.calls_to("POST", "/v1/account_links")) == 1
    assert isinstance(app.state.deps.payments, StripeProvider)


async def test_the_return_url_marks_the_firm_ready_once_charges_are_enabled(site):
    deps, firm, url, fake, app = site
    token = connect.onboarding_token(deps.master_key, firm.id, deps.clock())
    fake.answer(f"GET /v1/accounts/{ACCOUNT}", "account_created.json")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{url}{connect.RETURN_PATH}", params={"t": token})
    assert answer.status_code == 200 and "not enabled payments" in answer.text
    assert not (await Firm.get(id=firm.id)).payments_ready

    fake.answer(f"GET /v1/accounts/{ACCOUNT}", "account_charges_enabled.json")
    fake.answer("POST /v1/payment_method_domains", "payment_method_domain.json")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{url}{connect.RETURN_PATH}", params={"t": token})
    assert answer.status_code == 200 and "ready to take payments" in answer.text
    assert (await Firm.get(id=firm.id)).payments_ready
    [domain] = fake.calls_to("POST", "/v1/payment_method_domains")
    assert domain.form["domain_name"] == "pay.clienttrack.ca" and domain.account == ACCOUNT
    assert await Event.filter(action="firm.stripe_onboarding_return").count() == 2


def test_the_setup_reply_carries_the_link():
    from gateway.payments.provider import OnboardingLink

    firm = Firm(domain="firm.example", name="Maple Accounting")
    paragraphs = connect.setup_reply(firm, OnboardingLink(ACCOUNT, "https://connect.stripe.com/setup/s/x"))
    assert "    https://connect.stripe.com/setup/s/x" in paragraphs
