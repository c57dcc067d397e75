"""POST /stripe/webhook: localstripe's signed webhooks drive our endpoint
(served by uvicorn on 127.0.0.1) to paid; duplicated and shuffled events
give exactly one paid transition; a forged or stale signature gets 400 and
changes nothing; Connect events (disputes, payouts, accounts) from recorded
Stripe events."""

from __future__ import annotations

import dataclasses

import asyncio
import copy
import hashlib
import json
import random
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from gateway.core import db
from gateway.core.models import Event, Firm, OutboundMessage, PaymentRequest, RequestStatus
from gateway.payments import web_routes, webhooks
from gateway.payments.models import WebhookDelivery, WebhookEvent
from gateway.payments.provider import NotPayable, PayAttempt
from gateway.payments.stripe_provider import StripeProvider
from tests.payments_support import (
    WEBHOOK_SECRET,
    RecordedStripe,
    local_stripe,
    make_deps,
    make_firm,
    make_request,
    register_local_webhook,
    serve,
    sign,
)
from gateway.payments.web_routes import routes
from tests.conftest import database_url

RECORDED = Path(__file__).resolve().parent / "data" / "stripe"
ACCOUNT = "acct_1QcT7yPf3kZ2mN8a"
PI = "pi_3QcT8bPf3kZ2mN8a1xYz0AbC"


def now() -> datetime:
    return datetime.now(timezone.utc)


def app_for(deps, provider) -> Starlette:
    """What web/app.py does: our routes and app.state.deps, here with the given provider."""
    app = Starlette(routes=routes())
    app.state.deps = dataclasses.replace(deps, payments=provider)
    return app


async def eventually(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def post(url: str, payload: str, header: str | None, http: httpx.AsyncClient | None = None) -> httpx.Response:
    """One delivery; on a client of its own unless given one (a test that
    posts hundreds shares one: each new client loads the CA bundle, ~40 ms)."""
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    if http is not None:
        return await http.post(f"{url}/stripe/webhook", content=payload.encode(), headers=headers)
    async with httpx.AsyncClient() as http:
        return await http.post(f"{url}/stripe/webhook", content=payload.encode(), headers=headers)


# -- against localstripe ------------------------------------------------------------


@pytest.fixture
async def hooked(tmp_path):
    async with db.opened(database_url(tmp_path)), local_stripe() as stripe_url:
        deps = make_deps(tmp_path, stripe_secret_key="sk_test_local", stripe_api_base=stripe_url,
                         stripe_webhook_secret=WEBHOOK_SECRET)
        provider = StripeProvider("sk_test_local", api_base=stripe_url)
        async with serve(app_for(deps, provider)) as url:
            await register_local_webhook(stripe_url, "clienttrack", f"{url}/stripe/webhook")
            firm, staff = await make_firm(now())
            yield deps, provider, firm, staff, url, stripe_url


async def _localstripe_events(stripe_url: str, type_: str) -> list[dict]:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{stripe_url}/v1/events", params={"type": type_}, auth=("sk_test_local", ""))
    return answer.json()["data"]


async def _status(request_id: int) -> RequestStatus:
    return (await PaymentRequest.get(id=request_id)).status


async def test_localstripes_signed_webhook_marks_the_request_paid(hooked):
    deps, provider, firm, staff, url, stripe_url = hooked
    request = await make_request(firm, staff, now())
    # Confirm without applying the answer ourselves: only the webhook may mark it paid.
    outcome = await provider.confirm(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240))
    assert outcome.outcome == "succeeded"
    assert await _status(request.id) is RequestStatus.SENT

    async def paid() -> bool:
        return await _status(request.id) is RequestStatus.PAID

    await eventually(paid)
    stored = await PaymentRequest.get(id=request.id)
    assert (stored.total_minor, stored.fee_minor, stored.card_funding) == (10240, 240, "credit")
    [event] = await WebhookEvent.all()
    assert event.type == "payment_intent.succeeded" and event.processed_at is not None
    assert event.outcome == f"paid R{request.id}" and json.loads(event.payload)["id"] == event.id
    [delivery] = await WebhookDelivery.all()
    assert delivery.verified and delivery.outcome == "processed" and delivery.event_id == event.id
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1
    assert await OutboundMessage.filter(kind="payment-notice").count() == 1


async def test_duplicated_and_shuffled_events_give_exactly_one_paid_transition(hooked):
    deps, provider, firm, staff, url, stripe_url = hooked
    request = await make_request(firm, staff, now())
    await provider.confirm(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240))
    [succeeded] = await _localstripe_events(stripe_url, "payment_intent.succeeded")
    # A payment_failed from an earlier attempt, delivered late: it must not un-pay.
    failed = copy.deepcopy(succeeded)
    failed["id"] = "evt_late_failure_0001"
    failed["type"] = "payment_intent.payment_failed"
    failed["created"] = succeeded["created"] - 60
    failed["data"]["object"]["status"] = "requires_payment_method"
    failed["data"]["object"]["last_payment_error"] = {"code": "card_declined", "message": "Your card was declined."}
    deliveries = [succeeded] * 4 + [failed] * 3
    random.Random(4242).shuffle(deliveries)
    payloads = [json.dumps(e) for e in deliveries]
    answers = await asyncio.gather(*(post(url, p, sign(p)) for p in payloads))
    assert [a.status_code for a in answers] == [200] * len(payloads)

    # localstripe's own delivery of the same event arrives a second later: one more duplicate.
    async def localstripe_delivered() -> bool:
        return await WebhookDelivery.all().count() == len(payloads) + 1

    await eventually(localstripe_delivered)
    assert await _status(request.id) is RequestStatus.PAID
    assert await Event.filter(action="request.paid").count() == 1
    assert await Event.filter(action="request.payment_failed").count() == 0
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1
    assert await OutboundMessage.filter(kind="payment-notice").count() == 1
    assert sorted(e.id for e in await WebhookEvent.all()) == sorted([succeeded["id"], failed["id"]])
    assert all(e.processed_at is not None for e in await WebhookEvent.all())
    outcomes = [d.outcome for d in await WebhookDelivery.all()]
    assert outcomes.count("processed") == 2 and outcomes.count("duplicate") == len(payloads) - 1
    # Whichever came first re-read the PaymentIntent (succeeded) and paid; the other changed nothing.
    assert sorted(e.outcome for e in await WebhookEvent.all()) == ["no change (payment succeeded)",
                                                                   f"paid R{request.id}"]


async def test_a_decline_webhook_marks_failed_and_leaves_it_payable(hooked):
    deps, provider, firm, staff, url, stripe_url = hooked
    request = await make_request(firm, staff, now())
    outcome = await provider.confirm(request, PayAttempt(payment_method="pm_card_chargeCustomerFail", approved_total=10240))
    assert outcome.outcome == "declined"

    async def failed() -> bool:
        return await _status(request.id) is RequestStatus.FAILED

    await eventually(failed)
    request = await PaymentRequest.get(id=request.id)
    assert (await provider.create_or_get_intent(request)).intent_id == request.provider_ref


async def test_a_forged_or_stale_signature_gets_400_and_changes_nothing(hooked):
    deps, provider, firm, staff, url, stripe_url = hooked
    await register_local_webhook(stripe_url, "clienttrack", "http://127.0.0.1:9/nowhere")  # keep ours quiet
    request = await make_request(firm, staff, now())
    await provider.confirm(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240))
    [event] = await _localstripe_events(stripe_url, "payment_intent.succeeded")
    payload = json.dumps(event)
    tampered = payload.replace('"amount": 10240', '"amount": 1')
    assert tampered != payload
    t = int(time.time())
    refused = {
        "wrong secret": sign(payload, "whsec_forged"),
        "no header": None,
        "tampered body": sign(payload),
        "garbage header": "nonsense",
        "v0 only": f"t={t},v0=" + sign(payload).split("v1=")[1],
        "stale": sign(payload, timestamp=t - 301),
        "from the future": sign(payload, timestamp=t + 330),
    }
    for name, header in refused.items():
        body = tampered if name == "tampered body" else payload
        answer = await post(url, body, header)
        assert answer.status_code == 400, name
    outcomes = [d.outcome for d in await WebhookDelivery.all().order_by("id")]
    assert outcomes == ["bad signature"] * 5 + ["stale"] * 2
    assert not any(d.verified for d in await WebhookDelivery.all())
    assert await WebhookEvent.all().count() == 0
    stored = await PaymentRequest.get(id=request.id)
    assert stored.status is RequestStatus.SENT and stored.paid_at is None
    assert await OutboundMessage.all().count() == 0 and await Event.all().count() == 0

    # The forged deliveries did not squat on the event id: the real one still counts.
    answer = await post(url, payload, sign(payload, timestamp=t - 270))
    assert answer.status_code == 200 and answer.json() == {"outcome": "processed"}
    assert await _status(request.id) is RequestStatus.PAID


async def test_the_tolerance_is_300_seconds_on_our_clock(tmp_path):
    async with db.opened(database_url(tmp_path)):
        at = datetime(2026, 3, 5, 15, 0, tzinfo=timezone.utc)
        t = int(at.timestamp())
        results = {}
        for offset in (-301, -300, 0, 300, 301):
            payload = json.dumps({"id": f"evt_{offset}", "object": "event", "type": "customer.created",
                                  "created": t, "data": {"object": {}}})
            result = await webhooks.receive(payload.encode(), sign(payload, timestamp=t + offset),
                                            secret=WEBHOOK_SECRET, now=at)
            results[offset] = (result.status, result.outcome)
        assert results == {-301: (400, "stale"), -300: (200, "verified"), 0: (200, "verified"),
                           300: (200, "verified"), 301: (400, "stale")}
        # Verified but not processed yet: receive() stores, process() applies.
        assert await WebhookEvent.filter(processed_at__isnull=True).count() == 3


async def test_a_refund_event_records_the_refund(hooked):
    deps, provider, firm, staff, url, stripe_url = hooked
    request = await make_request(firm, staff, now())
    await provider.confirm(request, PayAttempt(payment_method="pm_card_visa", approved_total=10240))

    async def paid() -> bool:
        return await _status(request.id) is RequestStatus.PAID

    await eventually(paid)
    stored = await PaymentRequest.get(id=request.id)
    # A refund made in the Stripe Dashboard (localstripe sends no event for it: we sign one).
    async with httpx.AsyncClient() as http:
        refund = (await http.post(f"{stripe_url}/v1/refunds", data={"payment_intent": stored.provider_ref,
                                                                      "amount": "3000"},
                                  auth=("sk_test_local", ""))).json()
    charge_event = {"id": "evt_charge_refunded_01", "object": "event", "type": "charge.refunded",
                    "created": int(time.time()), "livemode": False,
                    "data": {"object": {"id": refund["charge"], "object": "charge",
                                        "payment_intent": stored.provider_ref, "amount_refunded": 3000}}}
    payload = json.dumps(charge_event)
    assert (await post(url, payload, sign(payload))).status_code == 200
    part = await PaymentRequest.get(id=request.id)
    assert (part.status, part.refunded_minor) == (RequestStatus.PARTIALLY_REFUNDED, 3000)
    assert (await post(url, payload, sign(payload))).json() == {"outcome": "duplicate"}
    assert await OutboundMessage.filter(kind="refund-receipt").count() == 1


async def test_unknown_events_are_stored_and_ignored_and_oversized_bodies_refused(hooked):
    deps, provider, firm, staff, url, stripe_url = hooked
    payload = json.dumps({"id": "evt_customer_1", "object": "event", "type": "customer.created",
                          "created": int(time.time()), "data": {"object": {"id": "cus_1"}}})
    answer = await post(url, payload, sign(payload))
    assert answer.status_code == 200 and answer.json() == {"outcome": "ignored"}
    event = await WebhookEvent.get(id="evt_customer_1")
    assert event.processed_at is not None and event.outcome.startswith("ignored")
    assert (await post(url, "x" * (webhooks.MAX_BODY_BYTES + 1), "t=1,v1=00")).status_code == 413
    not_an_event = json.dumps({"id": "x", "object": "charge"})
    assert (await post(url, not_an_event, sign(not_an_event))).status_code == 400


async def test_no_secret_configured_means_400(tmp_path):
    async with db.opened(database_url(tmp_path)):
        deps = make_deps(tmp_path)  # no Stripe at all
        async with serve(app_for(deps, None)) as url:
            payload = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"})
            answer = await post(url, payload, sign(payload))
        assert answer.status_code == 400 and answer.json() == {"outcome": "not configured"}
        assert await WebhookEvent.all().count() == 0


async def test_with_no_secret_configured_nothing_is_stored(tmp_path):
    async with db.opened(database_url(tmp_path)):
        async with serve(app_for(make_deps(tmp_path), None)) as url, httpx.AsyncClient() as http:
            for n in range(50):
                answer = await post(url, "x" * 16384, f"t={n},v1=00", http)
                assert answer.status_code == 400
        assert await WebhookDelivery.all().count() == 0


async def test_unverified_deliveries_keep_a_digest_and_an_address_gets_a_small_allowance(tmp_path):
    # The allowance refills on the app's clock (deps.clock), here the test's:
    # on the wall clock a slow machine posting for over a minute saw a refill.
    at = datetime.now(timezone.utc).replace(microsecond=0)
    clock = [at]
    async with db.opened(database_url(tmp_path)):
        deps = make_deps(tmp_path, clock=lambda: clock[0], stripe_webhook_secret=WEBHOOK_SECRET)
        async with serve(app_for(deps, None)) as url, httpx.AsyncClient() as http:
            junk = json.dumps({"id": "evt_" + "A" * 300, "object": "event", "type": "t" * 300, "pad": "x" * 16384})
            codes = [(await post(url, junk, sign(junk, "whsec_forged"), http)).status_code for _ in range(200)]
            # One more a refill later, and only one.
            clock[0] = at + timedelta(seconds=web_routes.UNVERIFIED_REFILL_SECONDS)
            codes += [(await post(url, junk, sign(junk, "whsec_forged"), http)).status_code for _ in range(2)]
            # A real delivery still goes through whoever sent the junk.
            payload = json.dumps({"id": "evt_1", "object": "event", "type": "customer.created",
                                  "data": {"object": {}}})
            answer = await post(url, payload, sign(payload, timestamp=int(clock[0].timestamp())), http)
            assert answer.status_code == 200
        assert codes == [400] * web_routes.UNVERIFIED_BURST + [429] * (200 - web_routes.UNVERIFIED_BURST) + [400, 429]
        kept = await WebhookDelivery.filter(verified=False)
        assert len(kept) == web_routes.UNVERIFIED_BURST + 1
        for delivery in kept:
            assert delivery.body == "sha256:" + hashlib.sha256(junk.encode()).hexdigest()
            assert delivery.body_size == len(junk) and delivery.outcome == "bad signature"
            assert len(delivery.event_id) <= 64 and len(delivery.event_type) <= 64
        [verified] = await WebhookDelivery.filter(verified=True)
        assert verified.body == payload


async def test_housekeeping_forgets_unverified_deliveries_after_a_week(tmp_path):
    async with db.opened(database_url(tmp_path)):
        at = datetime(2026, 3, 5, 15, 0, tzinfo=timezone.utc)
        for days in (8, 6):
            await webhooks.receive(b"junk", "t=1,v1=00", secret=WEBHOOK_SECRET, now=at - timedelta(days=days))
        payload = json.dumps({"id": "evt_1", "object": "event", "type": "customer.created"})
        old = at - timedelta(days=30)
        await webhooks.receive(payload.encode(), sign(payload, timestamp=int(old.timestamp())),
                               secret=WEBHOOK_SECRET, now=old)
        assert await webhooks.forget_unverified(at) == 1
        assert sorted(await WebhookDelivery.all().values_list("verified", "received_at")) == [
            (False, at - timedelta(days=6)), (True, old)]


# -- Connect events, against recorded Stripe responses --------------------------------------


@pytest.fixture
async def connected(tmp_path):
    fake = RecordedStripe(RECORDED)
    async with db.opened(database_url(tmp_path)), fake.running() as stripe_url:
        # The Connect endpoint has its own secret.
        deps = make_deps(tmp_path, stripe_secret_key="sk_test_recorded", stripe_api_base=stripe_url,
                         stripe_webhook_secret="whsec_platform_endpoint", stripe_connect_webhook_secret=WEBHOOK_SECRET)
        provider = StripeProvider("sk_test_recorded", api_base=stripe_url, max_network_retries=0)
        async with serve(app_for(deps, provider)) as url:
            firm, staff = await make_firm(now(), account=ACCOUNT)
            yield deps, provider, firm, staff, url, fake


def _recorded_event(name: str, **changes) -> str:
    event = json.loads((RECORDED / name).read_text())
    event["created"] = int(time.time())  # recorded long ago; delivered now
    event.update(changes)
    return json.dumps(event)


async def _paid_request(firm, staff, **fields):
    return await make_request(firm, staff, now(), status=RequestStatus.PAID, provider="stripe", provider_ref=PI,
                              total_minor=10000, fee_minor=0, paid_at=now(), **fields)


async def test_a_dispute_marks_the_request_disputed_and_tells_the_staff(connected):
    deps, provider, firm, staff, url, fake = connected
    request = await _paid_request(firm, staff)
    fake.answer("GET /v1/payment_intents/{id}", "payment_intent_disputed.json")
    payload = _recorded_event("event_charge_dispute_created.json")
    answer = await post(url, payload, sign(payload))  # signed by the Connect endpoint's secret
    assert answer.status_code == 200
    assert await _status(request.id) is RequestStatus.DISPUTED
    [read] = fake.calls_to("GET", f"/v1/payment_intents/{PI}")
    assert read.account == ACCOUNT  # re-read on the firm's account
    [notice] = await OutboundMessage.filter(kind="dispute-notice")
    assert notice.rcpt_to == staff.email and notice.subject.startswith("Disputed: Invoice 1042")


async def test_a_payout_records_the_deposit_date(connected):
    deps, provider, firm, staff, url, fake = connected
    request = await _paid_request(firm, staff)
    unrelated = await make_request(firm, staff, now())
    fake.answer("GET /v1/balance_transactions", "balance_transactions_payout.json")
    payload = _recorded_event("event_payout_paid.json")
    assert (await post(url, payload, sign(payload))).status_code == 200
    assert (await PaymentRequest.get(id=request.id)).deposit_date == date(2026, 3, 13)
    assert (await PaymentRequest.get(id=unrelated.id)).deposit_date is None
    [event] = await WebhookEvent.all()
    assert event.account == ACCOUNT and "on 1 request" in event.outcome


async def test_account_updated_marks_the_firm_ready(connected):
    deps, provider, firm, staff, url, fake = connected
    await Firm.filter(id=firm.id).update(payments_ready=False)
    fake.answer(f"GET /v1/accounts/{ACCOUNT}", "account_charges_enabled.json")
    payload = _recorded_event("event_account_updated.json")
    assert (await post(url, payload, sign(payload))).status_code == 200
    assert (await Firm.get(id=firm.id)).payments_ready


@pytest.fixture
async def connected_on_a_public_host(tmp_path):
    fake = RecordedStripe(RECORDED)
    async with db.opened(database_url(tmp_path)), fake.running() as stripe_url:
        deps = make_deps(tmp_path, stripe_secret_key="sk_test_recorded", stripe_api_base=stripe_url,
                         stripe_connect_webhook_secret=WEBHOOK_SECRET, base_url="https://pay.clienttrack.ca")
        provider = StripeProvider("sk_test_recorded", api_base=stripe_url, max_network_retries=0)
        async with serve(app_for(deps, provider)) as url:
            firm, _ = await make_firm(now(), account=ACCOUNT, ready=False)
            yield firm, url, fake


async def test_a_firm_verified_later_gets_its_wallet_domain_registered(connected_on_a_public_host):
    # Back from onboarding before Stripe enabled charges: no domain then. Stripe verifies
    # the firm later and says so with account.updated: the domain is registered now.
    firm, url, fake = connected_on_a_public_host
    fake.answer(f"GET /v1/accounts/{ACCOUNT}", "account_charges_enabled.json")
    fake.answer("POST /v1/payment_method_domains", "payment_method_domain.json")
    payload = _recorded_event("event_account_updated.json")
    assert (await post(url, payload, sign(payload))).status_code == 200
    assert (await Firm.get(id=firm.id)).payments_ready
    [domain] = fake.calls_to("POST", "/v1/payment_method_domains")
    assert domain.form["domain_name"] == "pay.clienttrack.ca" and domain.account == ACCOUNT


async def test_an_event_from_another_firms_account_changes_nothing(connected):
    deps, provider, firm, staff, url, fake = connected
    request = await _paid_request(firm, staff)
    fake.answer("GET /v1/payment_intents/{id}", "payment_intent_disputed.json")
    payload = _recorded_event("event_charge_dispute_created.json", account="acct_someone_else")
    assert (await post(url, payload, sign(payload))).status_code == 200
    assert await _status(request.id) is RequestStatus.PAID
    assert not fake.calls_to("GET", f"/v1/payment_intents/{PI}")
    assert (await WebhookEvent.get(id=json.loads(payload)["id"])).outcome.startswith("ignored")


async def test_an_amount_mismatch_is_flagged_never_paid(connected):
    deps, provider, firm, staff, url, fake = connected
    request = await make_request(firm, staff, now(), provider="stripe", provider_ref=PI)
    wrong = json.loads((RECORDED / "payment_intent_succeeded_debit.json").read_text())
    wrong["amount"] = wrong["amount_received"] = wrong["latest_charge"]["amount"] = 9000
    fake.answer("GET /v1/payment_intents/{id}", wrong)
    event = {"id": "evt_mismatch_1", "object": "event", "type": "payment_intent.succeeded", "account": ACCOUNT,
             "created": int(time.time()), "data": {"object": {"id": PI, "object": "payment_intent"}}}
    payload = json.dumps(event)
    assert (await post(url, payload, sign(payload))).status_code == 200
    stored = await PaymentRequest.get(id=request.id)
    assert stored.status is RequestStatus.SENT and stored.paid_at is None
    assert "received $90.00 CAD, expected $100.00 CAD" in stored.flagged
    assert await OutboundMessage.filter(kind="payment-flagged").count() == 1
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 0
    with pytest.raises(NotPayable):  # a person looks first
        await provider.create_or_get_intent(stored)

    wrong_currency = copy.deepcopy(wrong)
    wrong_currency.update(amount=10000, amount_received=10000, currency="usd")
    fake.answer("GET /v1/payment_intents/{id}", wrong_currency)
    payload = json.dumps({**event, "id": "evt_mismatch_2"})
    assert (await post(url, payload, sign(payload))).status_code == 200
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.SENT
    assert await OutboundMessage.filter(kind="payment-flagged").count() == 1  # told once


async def test_a_failure_to_reach_stripe_is_a_500_and_the_retry_applies(connected):
    deps, provider, firm, staff, url, fake = connected
    request = await make_request(firm, staff, now(), provider="stripe", provider_ref=PI, pass_fee=False)
    fake.answer("GET /v1/payment_intents/{id}", {"error": {"type": "api_error", "message": "try later"}}, status=500)
    event = {"id": "evt_retry_1", "object": "event", "type": "payment_intent.succeeded", "account": ACCOUNT,
             "created": int(time.time()), "data": {"object": {"id": PI, "object": "payment_intent"}}}
    payload = json.dumps(event)
    answer = await post(url, payload, sign(payload))
    assert answer.status_code == 500
    stored_event = await WebhookEvent.get(id="evt_retry_1")
    assert stored_event.processed_at is None and "ProviderError" in stored_event.error
    assert await _status(request.id) is RequestStatus.SENT

    fake.answer("GET /v1/payment_intents/{id}", "payment_intent_succeeded_debit.json")
    answer = await post(url, payload, sign(payload))  # Stripe's retry
    assert answer.status_code == 200 and answer.json() == {"outcome": "processed"}
    assert await _status(request.id) is RequestStatus.PAID
    assert (await WebhookEvent.get(id="evt_retry_1")).error == ""
