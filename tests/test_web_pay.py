"""The pay page, the sandbox checkout and the thank-you page over HTTP,
against the whole gateway: who may pay, what they are told a card costs
before paying, and that the ledger (not the page) decides what happened.
The Stripe page runs against recorded Stripe answers (RecordedStripe)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from gateway.core.models import Firm, OutboundMessage, PaymentRequest, RequestStatus
from gateway.payments.provider import NoProvider
from gateway.payments.stripe_provider import StripeProvider
from gateway.service import Running, running
from tests.conftest import make_settings, mails_to, settled
from tests.payments_support import RecordedStripe
from tests.web_support import PASSWORD, Made, base_url, csrf_token, make_request, submit
from web.csrf import Csrf

pytest_plugins = ["tests.web_fixtures"]

CREDIT, DEBIT, DECLINED = "4242 4242 4242 4242", "4000 0566 5566 5556", "4000 0000 0000 0002"
RECORDED = Path(__file__).resolve().parent / "data" / "stripe"
ACCOUNT = "acct_1QcT7yPf3kZ2mN8a"


async def hundred_plus_fee(gw: Running, **kwargs) -> Made:
    """A Canadian firm's $100.00 +fee request (the issue's example)."""
    made = await make_request(gw.deps, **kwargs)
    await PaymentRequest.filter(id=made.request.id).update(amount_minor=10000, pass_fee=True)
    return made


@contextlib.asynccontextmanager
async def opened(gw: Running, made: Made) -> AsyncIterator[httpx.AsyncClient]:
    """A browser that unlocked ``made``."""
    async with httpx.AsyncClient(base_url=base_url(gw)) as http:
        answer = await submit(http, made.path, PASSWORD)
        assert answer.status_code == 303
        yield http


async def pay(http: httpx.AsyncClient, made: Made, card: str, **fields: str) -> httpx.Response:
    form = await http.get(f"{made.path}/pay")
    assert form.status_code == 200, form.text
    return await http.post(f"{made.path}/pay",
                           data={"csrf_token": csrf_token(form), "card_number": card, **fields})


async def stored(made: Made) -> PaymentRequest:
    return await PaymentRequest.get(id=made.request.id)


# -- who may pay ---------------------------------------------------------------------


async def test_the_pay_page_needs_the_password_first(clocked):
    made = await hundred_plus_fee(clocked)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        before = await http.get(f"{made.path}/pay")
        assert before.status_code == 303 and before.headers["location"] == made.path
        # Posting a card without the session changes nothing either.
        blind = await http.post(f"{made.path}/pay", data={"card_number": CREDIT, "csrf_token": "x" * 43})
        assert blind.status_code == 303 and blind.headers["location"] == made.path
        thanks = await http.get(f"{made.path}/paid")
        assert thanks.status_code == 303 and thanks.headers["location"] == made.path
        await submit(http, made.path, PASSWORD)
        page = await http.get(f"{made.path}/pay")
    assert page.status_code == 200
    assert (await stored(made)).status is RequestStatus.VIEWED
    assert f'href="{made.path}"' in page.text  # back to the message


async def test_a_post_from_another_site_or_without_the_token_is_refused(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        form = await http.get(f"{made.path}/pay")
        token = csrf_token(form)
        for data, headers in (({"card_number": CREDIT}, {}),
                              ({"card_number": CREDIT, "csrf_token": token[:-2] + "AA"}, {}),
                              ({"card_number": CREDIT, "csrf_token": token}, {"sec-fetch-site": "cross-site"}),
                              ({"card_number": CREDIT, "csrf_token": token}, {"origin": "https://evil.example"})):
            refused = await http.post(f"{made.path}/pay", data=data, headers=headers)
            assert refused.status_code == 403 and "did not come from this site" in refused.text
        # The unlock form's token is not the pay form's.
        unlock_token = csrf_token(await httpx.AsyncClient(base_url=base_url(clocked)).get(made.path))
        refused = await http.post(f"{made.path}/pay", data={"card_number": CREDIT, "csrf_token": unlock_token})
        assert refused.status_code == 403
    request = await stored(made)
    assert request.status is RequestStatus.VIEWED and request.paid_at is None


# -- the sandbox checkout --------------------------------------------------------------


async def test_the_sandbox_checkout_is_marked_test_and_shows_the_fee_per_card_before_paying(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        page = await http.get(f"{made.path}/pay")
    text = page.text
    assert page.status_code == 200
    assert "TEST" in text and "no card is charged and no money moves" in text and "Pay (TEST)" in text
    assert 'name="card_number"' in text and f'action="{made.path}/pay"' in text
    assert "<script" not in text  # the sandbox needs no JavaScript
    assert "js.stripe.com" not in page.headers["content-security-policy"]
    credit, debit = text.split('<th scope="row">')[1:3]
    assert credit.startswith("Credit card") and "$102.40 CAD" in credit and "includes a $2.40 CAD card fee" in credit
    assert "capped at 2.4% of the amount in Canada" in credit
    assert debit.startswith("Debit or prepaid card") and "$100.00 CAD" in debit and "no card fee" in debit
    assert "Billing province" in text and '<option value="QC">Quebec</option>' in text
    assert "Billed in Quebec? No card fee" in text


async def test_billed_in_quebec_no_card_carries_a_fee(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        page = await http.get(f"{made.path}/pay?province=QC")
        assert "Any payment method" in page.text and "$102.40" not in page.text
        assert "not charged to clients billed in Quebec" in page.text
        assert '<option value="QC" selected>' in page.text
        paid = await pay(http, made, CREDIT, province="QC")
        assert paid.status_code == 303
        thanks = await http.get(paid.headers["location"])
    request = await stored(made)
    assert (request.status, request.total_minor, request.fee_minor, request.card_funding) == \
        (RequestStatus.PAID, 10000, 0, "credit")
    assert "You paid $100.00 to Demo Accounting" in thanks.text
    assert "not charged to clients billed in Quebec" in thanks.text


async def test_a_decline_keeps_the_request_payable_then_a_credit_card_pays_amount_plus_fee(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        declined = await pay(http, made, DECLINED)
        assert declined.status_code == 402
        assert "Your card was declined. Try another card." in declined.text
        assert 'name="card_number"' in declined.text  # the form again
        assert (await stored(made)).status is RequestStatus.FAILED
        message = await http.get(made.path)
        assert f'href="{made.path}/pay"' in message.text  # still payable

        # A credit card costs more than the page's first amount: its total, a confirm and a change-card choice.
        asked = await pay(http, made, CREDIT)
        assert asked.status_code == 200
        assert "This card: $102.40 CAD" in asked.text and "$100.00 CAD plus a $2.40 CAD card fee" in asked.text
        assert 'name="approved_total" value="10240"' in asked.text and "Pay $102.40 CAD (TEST)" in asked.text
        assert f'href="{made.path}/pay">Use another card' in asked.text
        assert (await stored(made)).status is RequestStatus.FAILED  # nothing charged yet
        paid = await http.post(f"{made.path}/pay", data={"csrf_token": csrf_token(asked), "card_number": CREDIT,
                                                          "approved_total": "10240"})
        assert paid.status_code == 303 and paid.headers["location"] == f"{made.path}/paid"
        thanks = await http.get(f"{made.path}/paid")
        message = await http.get(made.path)
    request = await stored(made)
    assert (request.status, request.amount_minor, request.fee_minor, request.total_minor) == \
        (RequestStatus.PAID, 10000, 240, 10240)
    assert request.provider == "sandbox" and request.card_funding == "credit"
    assert thanks.status_code == 200
    assert "You paid $102.40 to Demo Accounting" in thanks.text
    assert f"Reference: R{request.id}" in thanks.text
    assert "<dt>Card fee</dt><dd>$2.40 CAD</dd>" in thanks.text
    assert "<dt>Total paid</dt><dd>$102.40 CAD</dd>" in thanks.text
    assert "This was a TEST payment" in thanks.text
    assert "Paid on March 2, 2026" in message.text and f'href="{made.path}/pay"' not in message.text

    await settled()
    [receipt] = [m for m in mails_to(clocked, "jane@client.example") if "Receipt" in m["Subject"]]
    assert receipt["Subject"] == "[TEST] Receipt: $102.40 CAD paid to Demo Accounting"
    assert receipt["From"] == "Demo Accounting <pay@demo.localhost>"
    assert receipt["Reply-To"] == "staff@demo.localhost"
    body = " ".join(receipt.get_body(("plain",)).get_content().split())  # unwrapped
    assert "You paid $102.40 CAD to Demo Accounting" in body
    assert "Card fee: $2.40 CAD" in body and "Total paid: $102.40 CAD" in body
    assert "capped at 2.4% of the amount in Canada" in body and "Paid with: credit card" in body
    [notice] = [m for m in mails_to(clocked, "staff@demo.localhost") if m["Subject"].startswith("[TEST] Paid")]
    notice_body = " ".join(notice.get_body(("plain",)).get_content().split())
    assert "jane@client.example paid $102.40 CAD for Invoice 1042" in notice_body
    assert "Card fee paid by the client: $2.40 CAD" in notice_body


async def test_a_debit_card_pays_no_fee(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        paid = await pay(http, made, DEBIT.replace(" ", "-"))
        assert paid.status_code == 303
        thanks = await http.get(f"{made.path}/paid")
    request = await stored(made)
    assert (request.status, request.fee_minor, request.total_minor, request.card_funding) == \
        (RequestStatus.PAID, 0, 10000, "debit")
    assert "You paid $100.00 to Demo Accounting" in thanks.text
    assert "<dt>Card fee</dt>" not in thanks.text and "No card fee on debit cards in Canada." in thanks.text


async def test_a_paid_request_cannot_be_paid_again(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        form = await http.get(f"{made.path}/pay")
        token = csrf_token(form)
        first = await http.post(f"{made.path}/pay", data={"csrf_token": token, "card_number": DEBIT})
        assert first.status_code == 303
        # The back button's form, posted again with a credit card: nothing moves.
        again = await http.post(f"{made.path}/pay", data={"csrf_token": token, "card_number": CREDIT})
        assert again.status_code == 303 and again.headers["location"] == f"{made.path}/paid"
        page = await http.get(f"{made.path}/pay")
        assert page.status_code == 303 and page.headers["location"] == f"{made.path}/paid"
    request = await stored(made)
    assert (request.status, request.total_minor, request.card_funding) == (RequestStatus.PAID, 10000, "debit")
    await settled()
    kinds = [m.kind for m in await OutboundMessage.filter(request_id=request.id)]
    assert kinds.count("payment-receipt") == 1 and kinds.count("payment-notice") == 1


async def test_typing_mistakes_are_explained_and_do_not_count_as_a_failed_payment(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        empty = await pay(http, made, "  ")
        assert empty.status_code == 400 and "Type your card number." in empty.text
        assert (await stored(made)).status is RequestStatus.VIEWED
        unknown = await pay(http, made, "5555 5555 5555 4444")
        assert unknown.status_code == 402 and "not one of the test cards" in unknown.text
    assert (await stored(made)).status is RequestStatus.FAILED  # a real attempt, declined


async def test_cancelled_expired_and_flagged_requests_cannot_be_paid(clocked, clock):
    cancelled, flagged, expiring = [await hundred_plus_fee(clocked) for _ in range(3)]
    async with opened(clocked, cancelled) as one, opened(clocked, flagged) as two, \
            opened(clocked, expiring) as three:
        await PaymentRequest.filter(id=cancelled.request.id).update(status=RequestStatus.CANCELLED)
        await PaymentRequest.filter(id=flagged.request.id).update(flagged="amount mismatch")
        page = await one.get(f"{cancelled.path}/pay")
        assert page.status_code == 410 and "Demo Accounting cancelled this request" in page.text
        posted = await one.post(f"{cancelled.path}/pay", data={"card_number": CREDIT})
        assert posted.status_code == 410
        page = await two.get(f"{flagged.path}/pay")
        assert page.status_code == 409 and "being checked by Demo Accounting" in page.text
        clock.advance(days=31)
        page = await three.get(f"{expiring.path}/pay")
        assert page.status_code == 410 and "This link expired" in page.text
    for made in (cancelled, flagged, expiring):
        assert (await stored(made)).paid_at is None


async def test_the_thank_you_page_without_the_session_says_only_that_it_was_received(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        assert (await pay(http, made, CREDIT, approved_total="10240")).status_code == 303
    async with httpx.AsyncClient(base_url=base_url(clocked)) as stranger:
        page = await stranger.get(f"{made.path}/paid")
    assert page.status_code == 200 and "Payment received" in page.text
    assert "102.40" not in page.text and "sandbox_pi" not in page.text
    assert f'href="{made.path}"' in page.text


async def test_the_pages_in_french(clocked):
    made = await hundred_plus_fee(clocked)
    async with opened(clocked, made) as http:
        page = await http.get(f"{made.path}/pay?lang=fr")
        assert "Carte de crédit" in page.text and "102,40\u00a0$ CAD" in page.text
        assert "plafonnés à 2,4\u00a0% du montant au Canada" in page.text
        assert "Province de facturation" in page.text and "Payer (TEST)" in page.text
        declined = await http.post(f"{made.path}/pay", data={"csrf_token": csrf_token(page), "card_number": DECLINED})
        assert "Votre carte a été refusée. Essayez une autre carte." in declined.text
        asked = await http.post(f"{made.path}/pay", data={"csrf_token": csrf_token(page), "card_number": CREDIT})
        assert "Avec cette carte\u00a0: 102,40\u00a0$ CAD" in asked.text and "Utiliser une autre carte" in asked.text
        await http.post(f"{made.path}/pay", data={"csrf_token": csrf_token(page), "card_number": CREDIT,
                                                   "approved_total": "10240"})
        thanks = await http.get(f"{made.path}/paid")
    assert "Vous avez payé 102,40\u00a0$ à Demo Accounting" in thanks.text
    assert "Référence\u00a0: R" in thanks.text


# -- no provider: no test card ever pays ------------------------------------------------------


@pytest.fixture
async def unconfigured(tmp_path, clock) -> AsyncIterator[Running]:
    """The demo firm, but payments off (as without --demo and without keys)."""
    async with running(make_settings(tmp_path, payments="none"), clock=clock) as gw:
        assert isinstance(gw.deps.payments, NoProvider)
        yield gw


async def test_without_a_provider_the_message_says_payment_is_not_set_up_and_offers_no_link(unconfigured):
    made = await hundred_plus_fee(unconfigured)
    async with opened(unconfigured, made) as http:
        message = await http.get(made.path)
        assert "Online payment is not set up yet. Please contact Demo Accounting to pay." in message.text
        assert f"{made.path}/pay" not in message.text and 'href="mailto:staff@demo.localhost"' in message.text
        page = await http.get(f"{made.path}/pay")
        assert page.status_code == 200 and "not set up yet" in page.text and 'name="card_number"' not in page.text
        # Even with a valid token for the pay form, a test card pays nothing.
        token = pay_form_token(unconfigured, http, made)
        posted = await http.post(f"{made.path}/pay", data={"csrf_token": token, "card_number": CREDIT})
        assert posted.status_code == 409 and "not set up yet" in posted.text
    request = await stored(made)
    assert request.status is RequestStatus.VIEWED and request.paid_at is None and request.provider == ""


def pay_form_token(gw: Running, http: httpx.AsyncClient, made: Made) -> str:
    """The pay form's CSRF token for this browser, made as the server makes
    it (without a provider the page has no form to read it from)."""
    csrf = Csrf(gw.deps.master_key, base_url=base_url(gw), secure=False)
    return csrf.token(http.cookies[csrf.cookie], f"pay:{made.request.token_hash}")


# -- Stripe: the Payment Element page, against recorded answers ---------------------------------


@pytest.fixture
async def striped(tmp_path, clock) -> AsyncIterator[tuple[Running, RecordedStripe]]:
    fake = RecordedStripe(RECORDED)
    async with fake.running() as url:
        settings = make_settings(tmp_path, stripe_secret_key="sk_test_recorded", stripe_api_base=url,
                                 stripe_publishable_key="pk_test_recorded")
        async with running(settings, clock=clock) as gw:
            assert isinstance(gw.deps.payments, StripeProvider)
            await Firm.filter(domain="demo.localhost").update(stripe_account_id=ACCOUNT, payments_ready=True)
            fake.answer("POST /v1/payment_intents", "payment_intent_created.json")
            fake.answer("GET /v1/payment_intents/{id}", "payment_intent_created.json")
            fake.answer("GET /v1/confirmation_tokens/{id}", "confirmation_token_debit.json")
            fake.answer("POST /v1/payment_intents/{id}", "payment_intent_created.json")
            yield gw, fake


async def test_the_stripe_page_loads_stripe_js_under_its_policy_and_reuses_one_intent(striped):
    gw, fake = striped
    made = await hundred_plus_fee(gw)
    async with opened(gw, made) as http:
        first = await http.get(f"{made.path}/pay")
        again = await http.get(f"{made.path}/pay?lang=fr")
    assert first.status_code == 200
    text = first.text
    assert '<script src="https://js.stripe.com/v3/"></script>' in text
    assert '<script src="/static/pay-stripe.js"></script>' in text and "<script>" not in text
    assert 'data-publishable-key="pk_test_recorded"' in text and f'data-account="{ACCOUNT}"' in text
    assert 'data-amount="10000"' in text and 'data-currency="cad"' in text
    assert f'data-return-url="{base_url(gw)}{made.path}/paid"' in text
    assert "Debit or prepaid card, or Klarna" in text and "$102.40 CAD" in text
    assert "TEST" not in text and 'name="card_number"' not in text
    policy = first.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com" in policy and "frame-src https://js.stripe.com" in policy
    assert "'unsafe-inline'" not in policy
    assert 'data-locale="fr-CA"' in again.text
    # One PaymentIntent per request, reused on the second visit.
    assert len(fake.calls_to("POST", "/v1/payment_intents")) == 1
    assert (await stored(made)).provider_ref == "pi_3QcT8bPf3kZ2mN8a1xYz0AbC"


async def _post_token(http: httpx.AsyncClient, made: Made, **fields: str) -> httpx.Response:
    page = await http.get(f"{made.path}/pay")
    return await http.post(f"{made.path}/pay", headers={"accept": "application/json"},
                           data={"csrf_token": csrf_token(page), "confirmation_token": "ctoken_1QcT8xPf3kZ2mN8aDeBiT001",
                                 **fields})


async def test_stripe_confirms_on_the_server_with_the_amount_the_card_allows(striped):
    gw, fake = striped
    fake.answer("POST /v1/payment_intents/{id}/confirm", "payment_intent_succeeded_debit.json")
    made = await hundred_plus_fee(gw)
    async with opened(gw, made) as http:
        answer = await _post_token(http, made)
        assert answer.status_code == 200
        assert answer.json() == {"outcome": "succeeded", "next": f"{made.path}/paid"}
        thanks = await http.get(f"{made.path}/paid")
    [update] = fake.calls_to("POST", "/v1/payment_intents/{id}")
    assert update.form["amount"] == "10000" and update.account == ACCOUNT  # a debit card: no fee
    [confirm] = fake.calls_to("POST", "/v1/payment_intents/{id}/confirm")
    assert confirm.form["return_url"] == f"{base_url(gw)}{made.path}/paid"
    request = await stored(made)
    assert (request.status, request.total_minor, request.card_funding) == (RequestStatus.PAID, 10000, "debit")
    assert "You paid $100.00 to Demo Accounting" in thanks.text and "TEST" not in thanks.text


async def test_stripe_declines_and_next_actions_come_back_as_json(striped):
    gw, fake = striped
    made = await hundred_plus_fee(gw)
    fake.answer("POST /v1/payment_intents/{id}/confirm", "card_declined.json", status=402)
    fake.answer("GET /v1/payment_intents/{id}", "payment_intent_declined.json")
    async with opened(gw, made) as http:
        declined = await _post_token(http, made)
        assert declined.status_code == 402
        assert declined.json() == {"outcome": "declined", "message": "Your card was declined."}
        assert (await stored(made)).status is RequestStatus.FAILED

        action = json.loads((RECORDED / "payment_intent_created.json").read_text())
        action["status"] = "requires_action"
        fake.answer("POST /v1/payment_intents/{id}/confirm", action)
        fake.answer("GET /v1/payment_intents/{id}", action)
        answer = await _post_token(http, made)
        assert answer.json() == {"outcome": "requires_action", "next": f"{made.path}/paid",
                                 "client_secret": action["client_secret"]}
        # Back from 3-D Secure or Klarna before Stripe decided: not paid, try again.
        back = await http.get(f"{made.path}/paid")
        assert back.status_code == 200 and "did not go through" in back.text

        processing = {**action, "status": "processing"}
        fake.answer("GET /v1/payment_intents/{id}", processing)
        back = await http.get(f"{made.path}/paid")
        assert "being processed" in back.text and back.headers["refresh"] == "5"

        # The webhook has not come: the return page asks Stripe, which says succeeded.
        fake.answer("GET /v1/payment_intents/{id}", "payment_intent_succeeded_debit.json")
        back = await http.get(f"{made.path}/paid")
        assert "You paid $100.00 to Demo Accounting" in back.text
    assert (await stored(made)).status is RequestStatus.PAID


async def test_a_firm_whose_stripe_account_is_not_ready_offers_no_pay_link(striped):
    gw, fake = striped
    await Firm.filter(domain="demo.localhost").update(payments_ready=False)
    made = await hundred_plus_fee(gw)
    async with opened(gw, made) as http:
        message = await http.get(made.path)
        page = await http.get(f"{made.path}/pay")
    assert "not set up yet" in message.text and f"{made.path}/pay" not in message.text
    assert "not set up yet" in page.text and "js.stripe.com/v3" not in page.text
    assert fake.calls_to("POST", "/v1/payment_intents") == []


async def test_the_script_is_sent_back_to_the_form_when_the_browser_is_no_longer_unlocked(striped):
    gw, fake = striped
    made = await hundred_plus_fee(gw)
    async with httpx.AsyncClient(base_url=base_url(gw)) as http:
        answer = await http.post(f"{made.path}/pay", headers={"accept": "application/json"},
                                 data={"confirmation_token": "ctoken_x", "csrf_token": "x" * 43})
    assert answer.status_code == 403
    assert answer.json() == {"outcome": "error", "next": made.path,
                             "message": "This page was open for too long. Please type your password again."}
    assert fake.calls_to("POST", "/v1/payment_intents/{id}/confirm") == []
