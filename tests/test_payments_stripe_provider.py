"""The Stripe provider through our code: against localstripe (PaymentIntent
create, reuse, confirm, decline, refund) and, for what localstripe lacks
(Connect, the Payment Element's ConfirmationTokens, application fees on a
connected account, payout listings), against recorded Stripe responses."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from gateway.core import db
from gateway.core.models import Event, Firm, OutboundMessage, PaymentRequest, RequestStatus
from gateway.payments import connect, ledger
from gateway.payments.config import PaymentsConfig
from gateway.payments.provider import AlreadyPaid, NoProvider, PayAttempt, PaymentsNotSetUp
from gateway.payments.providers import provider_for
from gateway.payments.sandbox import SandboxProvider
from gateway.payments.stripe_objects import state_from_intent
from gateway.payments.stripe_provider import StripeProvider
from tests.conftest import database_url
from tests.payments_support import RecordedStripe, local_stripe, make_deps, make_firm, make_request

RECORDED = Path(__file__).resolve().parent / "data" / "stripe"
ACCOUNT = "acct_1QcT7yPf3kZ2mN8a"
PI = "pi_3QcT8bPf3kZ2mN8a1xYz0AbC"


def now() -> datetime:
    return datetime.now(timezone.utc)


# -- which provider ------------------------------------------------------------------


def test_provider_for_never_picks_the_sandbox_by_accident(tmp_path):
    assert isinstance(provider_for(make_deps(tmp_path).settings), NoProvider)
    assert isinstance(provider_for(make_deps(tmp_path, demo=True).settings), SandboxProvider)
    assert isinstance(provider_for(make_deps(tmp_path, payments="sandbox").settings), SandboxProvider)
    assert isinstance(provider_for(make_deps(tmp_path, payments="none", demo=True).settings), NoProvider)
    stripe_provider = provider_for(make_deps(tmp_path, stripe_secret_key="sk_test_abc123secret").settings)
    assert isinstance(stripe_provider, StripeProvider)
    # Keys win over --demo: a configured gateway never shows the TEST checkout.
    assert isinstance(provider_for(make_deps(tmp_path, demo=True, stripe_secret_key="sk_test_x").settings),
                      StripeProvider)
    assert "sk_test_abc123secret" not in repr(stripe_provider) and "abc123" not in str(vars(stripe_provider))


async def test_no_provider_says_online_payment_is_not_set_up(tmp_path):
    async with db.opened(database_url(tmp_path)):
        firm, staff = await make_firm(now())
        request = await make_request(firm, staff, now())
        with pytest.raises(PaymentsNotSetUp, match="not set up"):
            await NoProvider().create_or_get_intent(request)


# -- against localstripe --------------------------------------------------------------


@pytest.fixture
async def local(tmp_path):
    async with db.opened(database_url(tmp_path)), local_stripe() as url:
        deps = make_deps(tmp_path, stripe_secret_key="sk_test_local", stripe_api_base=url)
        provider = provider_for(deps.settings)
        assert isinstance(provider, StripeProvider)
        firm, staff = await make_firm(now())
        yield deps, provider, firm, staff, url


async def _localstripe_intents(url: str) -> list[dict]:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{url}/v1/payment_intents", auth=("sk_test_local", ""))
    return answer.json()["data"]


async def test_one_payment_intent_per_request_reused(local):
    deps, provider, firm, staff, url = local
    request = await make_request(firm, staff, now())
    first = await provider.create_or_get_intent(request)
    again = await provider.create_or_get_intent(await PaymentRequest.get(id=request.id))
    other_process = provider_for(deps.settings)
    third = await other_process.create_or_get_intent(await PaymentRequest.get(id=request.id))
    assert first.intent_id == again.intent_id == third.intent_id and first.intent_id.startswith("pi_")
    assert first.client_secret.startswith(first.intent_id + "_secret_")
    assert (first.amount_minor, first.currency, first.account) == (10000, "CAD", "acct_local")
    stored = await PaymentRequest.get(id=request.id)
    assert (stored.provider, stored.provider_ref) == ("stripe", first.intent_id)
    [pi] = await _localstripe_intents(url)
    assert pi["metadata"]["request_id"] == str(request.id)


async def test_a_credit_card_pays_the_amount_plus_the_capped_fee(local):
    deps, provider, firm, staff, url = local
    request = await make_request(firm, staff, now())
    # The page offered $100.00; this card costs $102.40: nothing is charged, the client is asked.
    asked = await ledger.pay(request, PayAttempt(payment_method="pm_card_visa"), provider, deps)
    assert (asked.outcome, asked.quote.total_minor, asked.quote.fee_minor, asked.state) == (
        "confirm_amount", 10240, 240, None)
    [pi] = await _localstripe_intents(url)
    assert int(pi["amount"]) == 10000 and pi["status"] == "requires_payment_method"
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.SENT
    # Approved: the PaymentIntent is set to that total and confirmed at exactly it.
    outcome = await ledger.pay(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240), provider,
                               deps)
    assert outcome.outcome == "succeeded" and outcome.quote.total_minor == 10240

    paid = await PaymentRequest.get(id=request.id)
    assert paid.status is RequestStatus.PAID
    assert (paid.amount_minor, paid.fee_minor, paid.total_minor, paid.card_funding) == (10000, 240, 10240, "credit")
    assert paid.provider_ref == outcome.intent.intent_id and paid.provider_fee_minor == 0  # localstripe takes no fee
    [pi] = await _localstripe_intents(url)
    assert int(pi["amount"]) == 10240 and pi["status"] == "succeeded"
    assert pi["metadata"]["fee_minor"] == "240" and pi["metadata"]["funding"] == "credit"
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1

    state = await provider.retrieve(paid)
    assert state.succeeded and state.amount_received_minor == 10240 and state.funding == "credit"
    # A paid request cannot be paid again.
    with pytest.raises(AlreadyPaid):
        await provider.create_or_get_intent(paid)
    with pytest.raises(AlreadyPaid):
        await ledger.pay(paid, PayAttempt(payment_method="pm_card_visa", approved_total=10240), provider, deps)
    assert len(await _localstripe_intents(url)) == 1
    # The return page asking Stripe again changes nothing.
    await ledger.reconcile(paid, provider, deps)
    assert await Event.filter(action="request.paid").count() == 1


async def test_the_return_page_asks_stripe_when_no_webhook_came(local):
    deps, provider, firm, staff, url = local
    request = await make_request(firm, staff, now())
    # Stripe.js confirmed on the client side; our server has heard nothing yet.
    await provider.confirm(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240))
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.SENT
    back = await ledger.reconcile(await PaymentRequest.get(id=request.id), provider, deps)
    assert back.status is RequestStatus.PAID and back.total_minor == 10240
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1


async def test_paying_again_a_request_paid_unbeknown_to_us_refuses_and_catches_up(local):
    deps, provider, firm, staff, url = local
    request = await make_request(firm, staff, now())
    await provider.confirm(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240))  # no webhook, no apply
    stale = await PaymentRequest.get(id=request.id)
    assert stale.status is RequestStatus.SENT
    with pytest.raises(AlreadyPaid):
        await ledger.pay(stale, PayAttempt(payment_method="pm_card_visa", approved_total=10240), provider, deps)
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.PAID
    assert len(await _localstripe_intents(url)) == 1


async def test_a_client_billed_in_quebec_pays_no_fee(local):
    deps, provider, firm, staff, url = local
    request = await make_request(firm, staff, now())
    outcome = await ledger.pay(request, PayAttempt(payment_method="pm_card_visa", province="Québec"), provider, deps)
    assert outcome.outcome == "succeeded"
    paid = await PaymentRequest.get(id=request.id)
    assert (paid.status, paid.total_minor, paid.fee_minor) == (RequestStatus.PAID, 10000, 0)


async def test_a_declined_card_leaves_the_request_payable(local):
    deps, provider, firm, staff, url = local
    request = await make_request(firm, staff, now())
    outcome = await ledger.pay(request, PayAttempt(payment_method="pm_card_chargeCustomerFail", approved_total=10240), provider, deps)
    assert outcome.outcome == "declined" and "declined" in outcome.message
    failed = await PaymentRequest.get(id=request.id)
    assert failed.status is RequestStatus.FAILED and failed.paid_at is None
    # Still payable: the same PaymentIntent is offered again.
    assert (await provider.create_or_get_intent(failed)).intent_id == failed.provider_ref


async def test_refunds_through_our_code(local):
    deps, provider, firm, staff, url = local
    request = await make_request(firm, staff, now())
    await ledger.pay(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240), provider, deps)
    paid = await PaymentRequest.get(id=request.id)

    result = await ledger.refund(paid, provider, deps, actor=staff.email, amount_minor=4000)
    assert result.refund_id.startswith("re_") and result.amount_minor == 4000
    part = await PaymentRequest.get(id=request.id)
    assert (part.status, part.refunded_minor) == (RequestStatus.PARTIALLY_REFUNDED, 4000)

    await ledger.refund(part, provider, deps, actor=staff.email)
    full = await PaymentRequest.get(id=request.id)
    assert (full.status, full.refunded_minor) == (RequestStatus.REFUNDED, 10240)
    async with httpx.AsyncClient() as http:
        refunds = (await http.get(f"{url}/v1/refunds", auth=("sk_test_local", ""))).json()["data"]
    assert sorted(r["amount"] for r in refunds) == [4000, 6240]
    assert await OutboundMessage.filter(kind="refund-receipt").count() == 2


async def test_a_firm_that_has_not_finished_onboarding_cannot_take_payments(local):
    deps, provider, firm, staff, url = local
    await Firm.filter(id=firm.id).update(payments_ready=False)
    request = await make_request(firm, staff, now())
    with pytest.raises(PaymentsNotSetUp, match="finished setting up"):
        await provider.create_or_get_intent(await PaymentRequest.get(id=request.id))


# -- against recorded Stripe responses ---------------------------------------------------


@pytest.fixture
async def recorded(tmp_path):
    fake = RecordedStripe(RECORDED)
    async with db.opened(database_url(tmp_path)), fake.running() as url:
        deps = make_deps(tmp_path, stripe_secret_key="sk_test_recorded", stripe_api_base=url)
        config = PaymentsConfig(application_fee_rate=Decimal("0.015"))
        provider = StripeProvider("sk_test_recorded", api_base=url, config=config, max_network_retries=0)
        firm, staff = await make_firm(now(), account=ACCOUNT)
        yield deps, provider, firm, staff, fake


async def _sixth_request(firm, staff):
    for _ in range(5):
        await make_request(firm, staff, now())
    return await make_request(firm, staff, now())


async def test_a_direct_charge_on_the_firms_account_with_the_platform_fee_after_five_free(recorded):
    deps, provider, firm, staff, fake = recorded
    fake.answer("POST /v1/payment_intents", "payment_intent_created.json")
    first = await PaymentRequest.get(id=(await _sixth_request(firm, staff)).id - 5)
    sixth = await PaymentRequest.get(id=first.id + 5)

    await provider.create_or_get_intent(first)
    intent = await provider.create_or_get_intent(sixth)
    assert intent.intent_id == PI and intent.client_secret.startswith(PI + "_secret_")
    free, charged = fake.calls_to("POST", "/v1/payment_intents")
    for call, request in ((free, first), (charged, sixth)):
        assert call.account == ACCOUNT  # a direct charge on the firm's connected account
        assert call.idempotency_key == f"clienttrack-pr-{request.id}-v1"
        assert (call.form["amount"], call.form["currency"]) == ("10000", "cad")
        assert call.form["metadata[request_id]"] == str(request.id)
        assert "automatic_payment_methods[enabled]" not in call.form  # the API's default already
    assert "application_fee_amount" not in free.form
    assert charged.form["application_fee_amount"] == "150"  # 1.5% of $100.00


async def _pay_with_token(provider, deps, fake, token_file: str | dict, *, paid_file: str | dict,
                          province: str | None = None):
    fake.answer("POST /v1/payment_intents", "payment_intent_created.json")
    fake.answer("GET /v1/confirmation_tokens/{id}", token_file)
    fake.answer("POST /v1/payment_intents/{id}/confirm", paid_file)
    fake.answer("POST /v1/payment_intents/{id}", "payment_intent_created.json")
    token = (fake.load(token_file) if isinstance(token_file, str) else token_file)["id"]
    return token


async def test_the_payment_element_flow_with_a_debit_card(recorded):
    deps, provider, firm, staff, fake = recorded
    request = await _sixth_request(firm, staff)
    token = await _pay_with_token(provider, deps, fake, "confirmation_token_debit.json",
                                  paid_file="payment_intent_succeeded_debit.json")
    attempt = PayAttempt(confirmation_token=token, return_url="https://pay.clienttrack.ca/r/T/pay/return")
    outcome = await ledger.pay(request, attempt, provider, deps)
    assert outcome.outcome == "succeeded"

    [update] = fake.calls_to("POST", "/v1/payment_intents/{id}")
    assert update.account == ACCOUNT
    assert update.form["amount"] == "10000"  # no fee on a debit card in Canada
    assert (update.form["metadata[funding]"], update.form["metadata[fee_minor]"]) == ("debit", "0")
    assert update.form["metadata[province]"] == "ON"  # from the postal code M5V
    [confirm] = fake.calls_to("POST", "/v1/payment_intents/{id}/confirm")
    assert confirm.form["confirmation_token"] == token
    assert confirm.form["return_url"] == attempt.return_url
    assert confirm.idempotency_key == f"clienttrack-pr-{request.id}-confirm-{token}-10000"
    assert confirm.account == ACCOUNT
    [read] = fake.calls_to("GET", "/v1/confirmation_tokens/{id}")
    assert read.account == ACCOUNT

    paid = await PaymentRequest.get(id=request.id)
    assert paid.status is RequestStatus.PAID
    assert (paid.total_minor, paid.fee_minor, paid.card_funding) == (10000, 0, "debit")
    assert (paid.provider_fee_minor, paid.application_fee_minor) == (340, 150)


@pytest.mark.parametrize(("funding", "postal", "amount"), [("credit", "M5V 2T6", "10240"),
                                                           ("credit", "H2X 1Y4", "10000"),
                                                           ("prepaid", "M5V 2T6", "10000")])
async def test_the_amount_follows_the_card_and_the_billing_province(recorded, funding, postal, amount):
    deps, provider, firm, staff, fake = recorded
    request = await make_request(firm, staff, now())
    token = json.loads((RECORDED / "confirmation_token_debit.json").read_text())
    token["payment_method_preview"]["card"]["funding"] = funding
    token["payment_method_preview"]["billing_details"]["address"]["postal_code"] = postal
    paid = json.loads((RECORDED / "payment_intent_succeeded_debit.json").read_text())
    paid["amount"] = paid["amount_received"] = paid["latest_charge"]["amount"] = int(amount)
    paid["latest_charge"]["payment_method_details"]["card"]["funding"] = funding
    await _pay_with_token(provider, deps, fake, token, paid_file=paid)
    await ledger.pay(request, PayAttempt(confirmation_token=token["id"], approved_total=int(amount)), provider, deps)
    [update] = fake.calls_to("POST", "/v1/payment_intents/{id}")
    assert update.form["amount"] == amount
    stored = await PaymentRequest.get(id=request.id)
    assert (stored.status, stored.total_minor) == (RequestStatus.PAID, int(amount))


async def test_klarna_carries_no_fee(recorded):
    deps, provider, firm, staff, fake = recorded
    request = await make_request(firm, staff, now())
    await _pay_with_token(provider, deps, fake, "confirmation_token_klarna.json",
                          paid_file="payment_intent_created.json")
    token = fake.load("confirmation_token_klarna.json")["id"]
    outcome = await provider.confirm(request, PayAttempt(confirmation_token=token))
    [update] = fake.calls_to("POST", "/v1/payment_intents/{id}")
    assert update.form["amount"] == "10000" and update.form["metadata[funding]"] == "unknown"
    assert outcome.quote.fee_minor == 0


async def test_a_decline_on_stripe_is_an_outcome_and_the_request_stays_payable(recorded):
    deps, provider, firm, staff, fake = recorded
    request = await make_request(firm, staff, now())
    await _pay_with_token(provider, deps, fake, "confirmation_token_debit.json",
                          paid_file="payment_intent_created.json")
    fake.answer("POST /v1/payment_intents/{id}/confirm", "card_declined.json", status=402)
    fake.answer("GET /v1/payment_intents/{id}", "payment_intent_declined.json")
    token = fake.load("confirmation_token_debit.json")["id"]
    outcome = await ledger.pay(request, PayAttempt(confirmation_token=token), provider, deps)
    assert (outcome.outcome, outcome.message) == ("declined", "Your card was declined.")
    failed = await PaymentRequest.get(id=request.id)
    assert failed.status is RequestStatus.FAILED


async def test_connect_account_onboarding_and_ready(recorded):
    deps, provider, _, staff, fake = recorded
    firm = await Firm.create(domain="new.example", name="New Firm LLP", created_at=now())
    fake.answer("POST /v1/accounts", "account_created.json")
    fake.answer("POST /v1/account_links", "account_link.json")
    fake.answer(f"GET /v1/accounts/{ACCOUNT}", "account_created.json")
    fake.answer("POST /v1/payment_method_domains", "payment_method_domain.json")

    link = await connect.start_onboarding(firm, provider, base_url="https://pay.clienttrack.ca",
                                          master_key=deps.master_key, now=now(), actor=staff.email)
    assert link.url == "https://connect.stripe.com/setup/s/acct_1QcT7yPf3kZ2mN8a/Jq3rS8tU2vWx"
    assert link.expires_at == datetime.fromtimestamp(1772723101, timezone.utc)
    firm = await Firm.get(id=firm.id)
    assert firm.stripe_account_id == ACCOUNT and not firm.payments_ready

    [create] = fake.calls_to("POST", "/v1/accounts")
    assert create.account == "" and create.idempotency_key == f"clienttrack-firm-{firm.id}-account-v1"
    assert (create.form["country"], create.form["default_currency"]) == ("CA", "cad")
    assert create.form["controller[stripe_dashboard][type]"] == "full"
    assert create.form["controller[fees][payer]"] == "account"
    assert create.form["business_profile[name]"] == "New Firm LLP"
    [account_link] = fake.calls_to("POST", "/v1/account_links")
    assert account_link.form["account"] == ACCOUNT and account_link.form["type"] == "account_onboarding"
    assert account_link.form["refresh_url"].startswith("https://pay.clienttrack.ca/stripe/connect/refresh?t=")
    assert account_link.form["return_url"].startswith("https://pay.clienttrack.ca/stripe/connect/return?t=")

    # Asking again reuses the account: only a fresh link.
    await connect.start_onboarding(firm, provider, base_url="https://pay.clienttrack.ca",
                                   master_key=deps.master_key, now=now(), actor=staff.email)
    assert len(fake.calls_to("POST", "/v1/accounts")) == 1 and len(fake.calls_to("POST", "/v1/account_links")) == 2

    # Back from Stripe before it enabled charges: not ready.
    status = await connect.finish_onboarding(firm, provider, now=now(), actor="stripe",
                                             base_url="https://pay.clienttrack.ca")
    assert not status.charges_enabled and not (await Firm.get(id=firm.id)).payments_ready
    assert not fake.calls_to("POST", "/v1/payment_method_domains")

    fake.answer(f"GET /v1/accounts/{ACCOUNT}", "account_charges_enabled.json")
    status = await connect.finish_onboarding(firm, provider, now=now(), actor="stripe",
                                             base_url="https://pay.clienttrack.ca")
    assert status.charges_enabled and status.payouts_enabled and (await Firm.get(id=firm.id)).payments_ready
    [domain] = fake.calls_to("POST", "/v1/payment_method_domains")
    assert domain.form["domain_name"] == "pay.clienttrack.ca" and domain.account == ACCOUNT


async def test_payment_method_domain_and_payout_listing(recorded):
    deps, provider, firm, staff, fake = recorded
    fake.answer("POST /v1/payment_method_domains", "payment_method_domain.json")
    fake.answer("GET /v1/balance_transactions", "balance_transactions_payout.json")
    registered = await provider.register_payment_method_domain("Pay.ClientTrack.ca.")
    assert registered == {"id": "pmd_1QcT9dPf3kZ2mN8aQw1Er2Ty", "domain_name": "pay.clienttrack.ca",
                          "enabled": True, "apple_pay": "active", "google_pay": "active"}
    [call] = fake.calls_to("POST", "/v1/payment_method_domains")
    assert call.account == "" and call.form["domain_name"] == "pay.clienttrack.ca"

    intents = await provider.payout_intents("po_1QcU2aPf3kZ2mN8aPoUt0001", ACCOUNT)
    assert intents == [PI, "pi_3QcT9kPf3kZ2mN8a0SeCoNdP"]
    [listing] = fake.calls_to("GET", "/v1/balance_transactions")
    assert listing.account == ACCOUNT and listing.query["payout"] == "po_1QcU2aPf3kZ2mN8aPoUt0001"


def test_reading_a_recorded_payment_intent():
    state = state_from_intent(json.loads((RECORDED / "payment_intent_succeeded_debit.json").read_text()),
                              account=ACCOUNT)
    assert state.succeeded and (state.amount_received_minor, state.currency, state.funding) == (10000, "CAD", "debit")
    assert (state.provider_fee_minor, state.application_fee_minor, state.refunded_minor) == (340, 150, 0)
    assert state.province == "ON" and state.charge_id == "ch_3QcT8bPf3kZ2mN8a1k2L3m4N"
    assert state.paid_at == datetime.fromtimestamp(1772723060, timezone.utc)
