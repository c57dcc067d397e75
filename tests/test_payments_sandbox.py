"""The sandbox checkout: Stripe's test numbers, and the same transitions a
Stripe payment makes (paid with the fee its funding type allows, one
receipt, one notice; a decline leaves the request payable)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import datetime, timezone

import pytest

from gateway import vault
from gateway.core import db
from gateway.core.models import Event, OutboundMessage, PaymentRequest, RequestStatus
from gateway.payments import ledger, receipts
from gateway.payments.provider import AlreadyPaid, NotPayable, NotRefundable, PayAttempt
from gateway.payments.sandbox import NOT_RECOGNISED, SandboxProvider, check_card, normalise_card_number
from tests.conftest import database_url
from tests.payments_support import make_deps, make_firm, make_request

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("typed", "digits"), [
    ("4242 4242 4242 4242", "4242424242424242"),
    ("4242-4242-4242-4242", "4242424242424242"),
    (" 4000 0566 5566 5556 ", "4000056655665556"),
    ("4000\u20130000\u20130000\u20130002", "4000000000000002"),
    ("4242424242424242", "4242424242424242"),
    ("4242 4242 4242 424x", ""),
    ("", ""),
    (None, ""),
    ("٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", ""),  # Arabic-Indic digits are not card digits
])
def test_card_numbers_are_normalised(typed, digits):
    assert normalise_card_number(typed) == digits


def test_the_three_test_numbers_and_everything_else():
    visa = check_card("4242 4242 4242 4242")
    assert (visa.approved, visa.funding, visa.last4) == (True, "credit", "4242")
    debit = check_card("4000 0566 5566 5556")
    assert (debit.approved, debit.funding) == (True, "debit")
    declined = check_card("4000 0000 0000 0002")
    assert (declined.approved, declined.message) == (False, "Your card was declined.")
    for other in ("4111 1111 1111 1111", "5555 5555 5555 4444", "1234", "", "abc"):
        card = check_card(other)
        assert not card.approved and card.message == NOT_RECOGNISED and card.funding == "unknown"


@pytest.fixture
async def world(tmp_path):
    async with db.opened(database_url(tmp_path)):
        deps = make_deps(tmp_path, clock=lambda: NOW, demo=True)
        firm, staff = await make_firm(NOW)
        yield deps, firm, staff, SandboxProvider(clock=lambda: NOW)


async def _mails(deps, kind: str) -> list[email.message.EmailMessage]:
    out = []
    for m in await OutboundMessage.filter(kind=kind).order_by("id"):
        raw = vault.open_with_master(deps.master_key, m.sealed_message, f"outbound:{m.rcpt_to}".encode())
        out.append(email.message_from_bytes(raw, policy=email.policy.default))
    return out


def _text(mail) -> str:
    return mail.get_body(("plain",)).get_content()


@pytest.mark.parametrize(("card", "province", "pass_fee", "total", "fee", "funding"), [
    ("4242 4242 4242 4242", None, True, 10240, 240, "credit"),
    ("4000 0566 5566 5556", None, True, 10000, 0, "debit"),
    ("4242 4242 4242 4242", "QC", True, 10000, 0, "credit"),
    ("4242 4242 4242 4242", None, False, 10000, 0, "credit"),
])
async def test_an_approved_card_pays_with_the_fee_its_funding_allows(world, card, province, pass_fee, total, fee,
                                                                     funding):
    deps, firm, staff, sandbox = world
    request = await make_request(firm, staff, NOW, pass_fee=pass_fee)
    outcome = await ledger.pay(request, PayAttempt(card_number=card, province=province), sandbox, deps)
    if total != request.amount_minor:
        # The total for this card differs from the amount the page offered: asked first, then paid.
        assert (outcome.outcome, outcome.quote.total_minor) == ("confirm_amount", total)
        assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.SENT
        outcome = await ledger.pay(request, PayAttempt(card_number=card, province=province, approved_total=total),
                                   sandbox, deps)
    assert outcome.outcome == "succeeded" and outcome.quote.total_minor == total

    paid = await PaymentRequest.get(id=request.id)
    assert paid.status is RequestStatus.PAID and paid.paid_at == NOW
    assert (paid.total_minor, paid.fee_minor, paid.card_funding) == (total, fee, funding)
    assert (paid.provider, paid.provider_ref) == ("sandbox", f"sandbox_pi_{request.id}")
    assert paid.flagged == ""

    [receipt] = await _mails(deps, "payment-receipt")
    [notice] = await _mails(deps, "payment-notice")
    assert receipt["To"] == "jane@client.example" and notice["To"] == staff.email
    assert receipt["Subject"].startswith("[TEST] Receipt:")
    body = _text(receipt)
    assert "TEST payment" in body and "Maple Accounting" in body and f"R{request.id}" in body
    if fee:
        assert "Card fee: $2.40 CAD" in body and "capped at 2.4% of the amount in Canada" in body
        assert "You paid $102.40 CAD to Maple Accounting" in body
    else:
        assert "You paid $100.00 CAD to Maple Accounting" in body
    assert await Event.filter(action="request.paid").count() == 1

    page = receipts.thank_you(paid, firm)
    assert page.headline == f"You paid {'$102.40' if fee else '$100.00'} CAD to Maple Accounting"
    assert page.reference == f"R{request.id}" and page.test_mode


async def test_a_declined_card_leaves_the_request_failed_and_payable(world):
    deps, firm, staff, sandbox = world
    request = await make_request(firm, staff, NOW)
    outcome = await ledger.pay(request, PayAttempt(card_number="4000 0000 0000 0002"), sandbox, deps)
    assert (outcome.outcome, outcome.message) == ("declined", "Your card was declined.")
    request = await PaymentRequest.get(id=request.id)
    assert request.status is RequestStatus.FAILED and request.paid_at is None
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 0

    unknown = await ledger.pay(request, PayAttempt(card_number="4111 1111 1111 1111"), sandbox, deps)
    assert unknown.outcome == "declined" and "not recognised" in unknown.message

    outcome = await ledger.pay(request, PayAttempt(card_number="4242424242424242", approved_total=10240), sandbox, deps)
    assert outcome.outcome == "succeeded"
    assert (await PaymentRequest.get(id=request.id)).status is RequestStatus.PAID
    assert await Event.filter(action="request.payment_failed").count() == 2  # one per declined attempt


async def test_a_paid_request_cannot_be_paid_again_even_by_a_double_click(world):
    deps, firm, staff, sandbox = world
    request = await make_request(firm, staff, NOW)
    attempt = PayAttempt(card_number="4242 4242 4242 4242", approved_total=10240)
    results = await asyncio.gather(*(ledger.pay(request, attempt, sandbox, deps) for _ in range(5)),
                                   return_exceptions=True)
    assert all(not isinstance(r, Exception) or isinstance(r, AlreadyPaid) for r in results), results
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1
    assert await Event.filter(action="request.paid").count() == 1

    paid = await PaymentRequest.get(id=request.id)
    with pytest.raises(AlreadyPaid):
        await ledger.pay(paid, attempt, sandbox, deps)
    with pytest.raises(AlreadyPaid):
        await sandbox.create_or_get_intent(paid)
    assert await OutboundMessage.filter(kind="payment-receipt").count() == 1


async def test_cancelled_and_expired_requests_cannot_be_paid(world):
    deps, firm, staff, sandbox = world
    cancelled = await make_request(firm, staff, NOW, status=RequestStatus.CANCELLED)
    with pytest.raises(NotPayable):
        await ledger.pay(cancelled, PayAttempt(card_number="4242424242424242", approved_total=10240), sandbox, deps)
    expired = await make_request(firm, staff, NOW, expires_at=NOW)
    with pytest.raises(NotPayable):
        await ledger.pay(expired, PayAttempt(card_number="4242424242424242", approved_total=10240), sandbox, deps)


async def test_refunds_partial_then_full(world):
    deps, firm, staff, sandbox = world
    request = await make_request(firm, staff, NOW)
    with pytest.raises(NotRefundable):
        await ledger.refund(request, sandbox, deps, actor=staff.email)
    await ledger.pay(request, PayAttempt(card_number="4242424242424242", approved_total=10240), sandbox, deps)
    request = await PaymentRequest.get(id=request.id)

    await ledger.refund(request, sandbox, deps, actor=staff.email, amount_minor=4000)
    request = await PaymentRequest.get(id=request.id)
    assert (request.status, request.refunded_minor) == (RequestStatus.PARTIALLY_REFUNDED, 4000)
    with pytest.raises(NotRefundable):
        await ledger.refund(request, sandbox, deps, actor=staff.email, amount_minor=6241)

    await ledger.refund(request, sandbox, deps, actor=staff.email)
    request = await PaymentRequest.get(id=request.id)
    assert (request.status, request.refunded_minor) == (RequestStatus.REFUNDED, 10240)
    assert [m["Subject"] for m in await _mails(deps, "refund-receipt")] == [
        "[TEST] Refund: $40.00 CAD from Maple Accounting", "[TEST] Refund: $62.40 CAD from Maple Accounting"]
    with pytest.raises(NotRefundable):
        await ledger.refund(request, sandbox, deps, actor=staff.email)
