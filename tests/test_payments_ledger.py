"""The ledger's rules, with snapshots built by hand: monotonic transitions,
mismatches flagged, exactly one paid transition, the thank-you text."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gateway.core import db
from gateway.core.models import Event, OutboundMessage, PaymentRequest, RequestStatus
from gateway.payments import ledger, receipts
from gateway.payments.config import PaymentsConfig
from gateway.payments.provider import PaymentState
from tests.conftest import database_url
from tests.payments_support import make_deps, make_firm, make_request

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=timezone.utc)
CONFIG = PaymentsConfig()


@pytest.fixture
async def world(tmp_path):
    async with db.opened(database_url(tmp_path)):
        deps = make_deps(tmp_path, clock=lambda: NOW)
        firm, staff = await make_firm(NOW, account="acct_firm")
        yield deps, firm, staff


def succeeded(request: PaymentRequest, total: int = 10240, **changes) -> PaymentState:
    state = PaymentState(provider="stripe", intent_id=f"pi_{request.id}", status="succeeded", amount_minor=total,
                         amount_received_minor=total, currency="CAD", request_id=request.id, funding="credit",
                         charge_id=f"ch_{request.id}", paid_at=NOW, provider_fee_minor=347, account="acct_firm")
    return replace(state, **changes)


async def apply(deps, state, **kw):
    return await ledger.apply_in_transaction(state, deps=deps, config=CONFIG, actor="test", **kw)


async def test_many_concurrent_reports_make_one_paid_transition(world):
    deps, firm, staff = world
    request = await make_request(firm, staff, NOW)
    await asyncio.gather(*(apply(deps, succeeded(request)) for _ in range(8)))
    paid = await PaymentRequest.get(id=request.id)
    assert paid.status is RequestStatus.PAID and paid.provider_ref == f"pi_{request.id}"
    assert (paid.total_minor, paid.fee_minor, paid.provider_fee_minor) == (10240, 240, 347)
    assert await Event.filter(action="request.paid").count() == 1
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1


async def test_the_client_may_pay_without_the_fee_but_not_any_other_amount(world):
    deps, firm, staff = world
    plain = await make_request(firm, staff, NOW)
    await apply(deps, succeeded(plain, total=10000))  # the firm absorbs the fee
    stored = await PaymentRequest.get(id=plain.id)
    assert (stored.status, stored.fee_minor, stored.total_minor) == (RequestStatus.PAID, 0, 10000)

    debit = await make_request(firm, staff, NOW)
    await apply(deps, succeeded(debit, total=10240, funding="debit"))  # a fee on a debit card: not allowed
    stored = await PaymentRequest.get(id=debit.id)
    assert stored.status is RequestStatus.SENT
    assert stored.flagged == f"the payment pi_{debit.id} received $102.40 CAD, expected $100.00 CAD"

    quebec = await make_request(firm, staff, NOW)
    await apply(deps, succeeded(quebec, total=10240, province="QC"))
    assert (await PaymentRequest.get(id=quebec.id)).status is RequestStatus.SENT


async def test_a_payment_after_cancellation_is_recorded_and_flagged(world):
    deps, firm, staff = world
    request = await make_request(firm, staff, NOW, status=RequestStatus.CANCELLED)
    await apply(deps, succeeded(request))
    stored = await PaymentRequest.get(id=request.id)
    assert stored.status is RequestStatus.PAID
    assert stored.flagged == "paid after it was cancelled: keep the payment or refund it"
    [notice] = await OutboundMessage.filter(kind="payment-notice")
    assert notice.rcpt_to == staff.email


async def test_a_second_payment_for_a_paid_request_is_flagged_not_counted(world):
    deps, firm, staff = world
    request = await make_request(firm, staff, NOW)
    await apply(deps, succeeded(request))
    await apply(deps, succeeded(request, intent_id="pi_second"))
    stored = await PaymentRequest.get(id=request.id)
    assert stored.status is RequestStatus.PAID and stored.provider_ref == f"pi_{request.id}"
    assert "a second payment (pi_second)" in stored.flagged
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1
    assert await OutboundMessage.filter(kind="payment-flagged").count() == 1


async def test_states_only_move_forward(world):
    deps, firm, staff = world
    request = await make_request(firm, staff, NOW)
    failed = succeeded(request, status="requires_payment_method", amount_received_minor=0,
                       failure_message="Your card was declined.")
    await apply(deps, failed)
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.FAILED
    await apply(deps, succeeded(request))
    await apply(deps, failed)  # late: changes nothing
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.PAID

    await apply(deps, succeeded(request, refunded_minor=5000))
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.PARTIALLY_REFUNDED
    await apply(deps, succeeded(request, refunded_minor=3000))  # an older snapshot: refunds only grow
    assert (await PaymentRequest.get(id=request.id)).refunded_minor == 5000
    await apply(deps, succeeded(request, refunded_minor=10240))
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.REFUNDED
    await apply(deps, succeeded(request, refunded_minor=10240, disputed=True),
                dispute=ledger.DisputeInfo("du_1", "fraudulent", NOW))
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.DISPUTED
    await apply(deps, succeeded(request, refunded_minor=10240))
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.DISPUTED
    assert await OutboundMessage.filter(kind="dispute-notice").count() == 1


async def test_an_unknown_payment_or_another_account_changes_nothing(world):
    deps, firm, staff = world
    request = await make_request(firm, staff, NOW)
    applied = await apply(deps, succeeded(request, request_id=None, intent_id="pi_unknown"))
    assert applied.outcome == "ignored: no request for pi_unknown"
    for account in ("acct_other", ""):  # another firm's account, or the platform's own
        applied = await apply(deps, succeeded(request, account=account))
        assert applied.outcome.startswith("ignored")
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.SENT


async def test_the_thank_you_page_text(world):
    deps, firm, staff = world
    request = await make_request(firm, staff, NOW)
    await apply(deps, succeeded(request))
    paid = await PaymentRequest.get(id=request.id)
    page = receipts.thank_you(paid, firm, fee_text="Card fee $2.40 CAD")
    assert page.headline == "You paid $102.40 CAD to Maple Accounting"
    assert page.reference == f"R{request.id}" and not page.test_mode
    assert dict(page.lines)["Payment ID"] == f"pi_{request.id}"
    assert dict(page.lines)["Paid on"] == "2026-03-05"


async def test_the_platform_fee_spares_the_first_five_requests(world):
    from gateway.payments.provider import application_fee_for

    deps, firm, staff = world
    config = PaymentsConfig(application_fee_rate=Decimal("0.01"), application_fee_fixed_minor=25)
    fees = [await application_fee_for(await make_request(firm, staff, NOW, amount_minor=12345), config)
            for _ in range(7)]
    assert fees == [0, 0, 0, 0, 0, 148, 148]  # 123.45 + 25 -> 148 (half up)
    assert await application_fee_for(await make_request(firm, staff, NOW), PaymentsConfig()) == 0
