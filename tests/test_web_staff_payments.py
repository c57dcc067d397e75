"""The Payments setup page over real HTTP: what the firm can take, Stripe's
onboarding link (from recorded Stripe answers), and the card-fee terms set
through the same code as `clienttrack firm set` and the `surcharge notice`
command; admins only, checked by URL."""

from __future__ import annotations

import html
from pathlib import Path
from typing import AsyncIterator

import pytest

from gateway.core.models import Event, Firm, Level
from gateway.service import Running, running
from tests.conftest import make_settings, mails_to, settled
from tests.payments_support import RecordedStripe
from tests.staff_support import ADMIN, colleague, post_form, signed_in

pytest_plugins = ["tests.web_fixtures"]
RECORDED = Path(__file__).resolve().parent / "data" / "stripe"


def flash(page) -> str:
    start = page.text.index('<p class="notice')
    return html.unescape(page.text[start:page.text.index("</p>", start)])


async def test_the_demo_says_it_is_a_test_checkout_and_cannot_onboard_to_stripe(clocked):
    async with signed_in(clocked) as http:
        page = await http.get("/staff/payments")
        assert page.status_code == 200 and "TEST checkout" in page.text
        done = await post_form(http, "/staff/payments", "/staff/payments/setup")
        assert done.status_code == 200 and "Stripe is not set up on this gateway" in html.unescape(done.text)


@pytest.fixture
async def with_stripe(tmp_path: Path, clock) -> AsyncIterator[tuple[Running, RecordedStripe]]:
    fake = RecordedStripe(RECORDED)
    fake.answer("POST /v1/accounts", "account_created.json")
    fake.answer("POST /v1/account_links", "account_link.json")
    async with fake.running() as stripe_url:
        settings = make_settings(tmp_path, demo=True, payments="stripe", stripe_secret_key="sk_test_recorded",
                                 stripe_api_base=stripe_url)
        async with running(settings, clock=clock) as gw:
            yield gw, fake


async def test_an_admin_gets_stripes_onboarding_link_to_follow(with_stripe):
    gw, fake = with_stripe
    async with signed_in(gw) as http:
        page = await http.get("/staff/payments")
        assert "cannot pay online yet" in page.text
        done = await post_form(http, "/staff/payments", "/staff/payments/setup")
        link = fake.load("account_link.json")["url"]
        assert f'href="{link}"' in done.text and "Continue to Stripe" in done.text
    firm = await Firm.get(domain="demo.localhost")
    assert firm.stripe_account_id == fake.load("account_created.json")["id"]
    assert await Event.filter(action="firm.stripe_onboarding_link", actor=ADMIN).exists()


async def test_the_card_fee_terms_and_the_network_notice(clocked):
    async with signed_in(clocked) as http:
        await post_form(http, "/staff/payments", "/staff/payments/terms",
                        {"rate": "2.5%", "fixed": "0.30", "province": "ON"})
        assert "card fee terms are saved" in flash(await http.get("/staff/payments"))
        firm = await Firm.get(domain="demo.localhost")
        assert (firm.card_fee_rate, firm.card_fee_fixed_minor, firm.province) == ("0.025", 30, "ON")
        page = html.unescape((await http.get("/staff/payments")).text)
        assert "2.5% + 0.30 CAD" in page

        await post_form(http, "/staff/payments", "/staff/payments/terms", {"rate": "lots", "fixed": "", "province": ""})
        assert "'lots' is not a rate" in flash(await http.get("/staff/payments"))

        await post_form(http, "/staff/payments", "/staff/payments/notice", {"notice": "2026-01-15"})
        assert "notice is recorded" in flash(await http.get("/staff/payments"))
        assert "since February 14, 2026" in (await http.get("/staff/payments")).text
        await post_form(http, "/staff/payments", "/staff/payments/notice", {"notice": "2026-12-01"})
        assert "once it is given, not before" in flash(await http.get("/staff/payments"))
    firm = await Firm.get(domain="demo.localhost")
    assert firm.surcharge_notice_date.isoformat() == "2026-01-15"
    await settled()
    assert any(str(m["Subject"]) == "Card fee terms of Demo Accounting" for m in mails_to(clocked, ADMIN))


@pytest.mark.parametrize("level", [Level.SEND, Level.REPORT])
async def test_below_admin_the_payments_pages_are_refused_by_url(clocked, level):
    await colleague(clocked, "ann@demo.localhost", level)
    async with signed_in(clocked, "ann@demo.localhost") as http:
        assert (await http.get("/staff/payments")).status_code == 403
        for path, data in (("/staff/payments/setup", {}), ("/staff/payments/notice", {"notice": "2026-01-01"}),
                           ("/staff/payments/terms", {"rate": "9%"})):
            assert (await post_form(http, "/staff/", path, data)).status_code == 403
    firm = await Firm.get(domain="demo.localhost")
    assert firm.card_fee_rate == "" and firm.stripe_account_id == ""
