"""The sandbox provider: a TEST checkout that takes Stripe's test card
numbers and moves no money.

It is on only under ``--demo`` or ``CLIENTTRACK_PAYMENTS=sandbox`` (see
:func:`gateway.payments.providers.provider_for`). The checkout page (built
with the pay page) posts a ``card_number``; this module decides:

=========================  ==========  ==========================
card number                outcome     funding
=========================  ==========  ==========================
4242 4242 4242 4242        approved    credit (Visa)
4000 0566 5566 5556        approved    debit (Visa debit)
4000 0000 0000 0002        declined    "Your card was declined."
anything else              declined    "card not recognised"
=========================  ==========  ==========================

Spaces and dashes are ignored. An approved card produces the same
:class:`PaymentState` a Stripe PaymentIntent would (status ``succeeded``,
the amount with the fee its funding type allows), and a decline the state of
a failed attempt; :mod:`gateway.payments.ledger` applies either exactly as
it applies a Stripe webhook's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.core.clock import Clock, system_clock
from gateway.core.models import PaymentRequest
from gateway.core.money import format_display
from gateway.payments import fees
from gateway.payments.config import PaymentsConfig
from gateway.payments.provider import (
    PAID_FAMILY,
    REFUNDABLE,
    ConfirmOutcome,
    Intent,
    NotRefundable,
    PayAttempt,
    PaymentState,
    RefundResult,
    application_fee_for,
    check_payable,
    firm_of,
    quote_for_request,
)

TEST_BANNER = "TEST MODE: this checkout is a sandbox. No card is charged and no money moves."
NOT_RECOGNISED = ("Card not recognised: this TEST checkout takes only Stripe's test numbers "
                  "4242 4242 4242 4242 (credit), 4000 0566 5566 5556 (debit) "
                  "and 4000 0000 0000 0002 (declined).")


@dataclass(frozen=True)
class TestCard:
    number: str
    approved: bool
    funding: str
    brand: str
    message: str = ""
    decline_code: str = ""

    @property
    def last4(self) -> str:
        return self.number[-4:]


TEST_CARDS: dict[str, TestCard] = {
    "4242424242424242": TestCard("4242424242424242", True, "credit", "Visa"),
    "4000056655665556": TestCard("4000056655665556", True, "debit", "Visa"),
    "4000000000000002": TestCard("4000000000000002", False, "credit", "Visa",
                                 "Your card was declined.", "card_declined"),
}

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")


def normalise_card_number(text: str | None) -> str:
    """The digits of a typed card number ("4242 4242-4242 4242" is
    "4242424242424242"); "" when it holds anything but digits and separators."""
    digits = _SEPARATORS.sub("", text or "")
    return digits if digits.isascii() and digits.isdigit() else ""


def check_card(text: str | None) -> TestCard:
    """The outcome of paying with the typed number; never raises."""
    number = normalise_card_number(text)
    card = TEST_CARDS.get(number)
    if card is not None:
        return card
    return TestCard(number, False, "unknown", "", NOT_RECOGNISED, "card_not_recognised")


def simulated_processor_fee(total_minor: int, config: PaymentsConfig) -> int:
    """What Stripe would keep at the firm's rate (for the sandbox's reports)."""
    fee = (Decimal(total_minor) * config.card_fee_rate).to_integral_value(rounding=ROUND_HALF_UP)
    return int(fee) + config.card_fee_fixed_minor


class SandboxProvider:
    name = "sandbox"
    test_mode = True

    def __init__(self, config: PaymentsConfig | None = None, clock: Clock = system_clock) -> None:
        self.config = config or PaymentsConfig()
        self.clock = clock

    def __repr__(self) -> str:
        return "SandboxProvider(TEST)"

    @staticmethod
    def intent_id(request: PaymentRequest) -> str:
        return f"sandbox_pi_{request.id}"

    async def create_or_get_intent(self, request: PaymentRequest) -> Intent:
        check_payable(request, self.clock())
        intent_id = self.intent_id(request)
        if request.provider_ref != intent_id:
            await PaymentRequest.filter(id=request.id, provider_ref="").update(provider=self.name,
                                                                             provider_ref=intent_id)
            request.provider, request.provider_ref = self.name, intent_id
        return Intent(self.name, intent_id, "", "requires_payment_method", request.amount_minor,
                      request.currency)

    async def confirm(self, request: PaymentRequest, attempt: PayAttempt) -> ConfirmOutcome:
        intent = await self.create_or_get_intent(request)
        firm = await firm_of(request)
        card = check_card(attempt.card_number)
        province = fees.billing_province(None, attempt.province)
        quote = quote_for_request(request, firm, self.config, funding=card.funding, province=province)
        now = self.clock()
        metadata = {"request_id": str(request.id), "province": province or "", "funding": card.funding,
                    "fee_minor": str(quote.fee_minor), "card_last4": card.last4}
        if not card.approved:
            state = PaymentState(
                provider=self.name, intent_id=intent.intent_id, status="requires_payment_method",
                amount_minor=quote.total_minor, amount_received_minor=0, currency=request.currency,
                request_id=request.id, funding=card.funding, province=province,
                failure_message=card.message, metadata=metadata,
            )
            return ConfirmOutcome("declined", card.message, intent, quote, state)
        if quote.total_minor != attempt.approved(request):
            # As with Stripe: this card costs another total than the client
            # approved. Nothing is charged until they approve this one.
            return ConfirmOutcome("confirm_amount", "Confirm the total for this card.", intent, quote)
        application_fee = await application_fee_for(request, self.config)
        state = PaymentState(
            provider=self.name, intent_id=intent.intent_id, status="succeeded",
            amount_minor=quote.total_minor, amount_received_minor=quote.total_minor, currency=request.currency,
            request_id=request.id, funding=card.funding, province=province,
            charge_id=f"sandbox_ch_{request.id}", paid_at=now,
            provider_fee_minor=simulated_processor_fee(quote.total_minor, self.config),
            application_fee_minor=application_fee or None, metadata=metadata,
        )
        return ConfirmOutcome("succeeded", "Payment approved (TEST).", intent, quote, state)

    async def retrieve(self, request: PaymentRequest) -> PaymentState | None:
        # The sandbox keeps no state of its own: the request row is the truth.
        return None

    async def refund(self, request: PaymentRequest, amount_minor: int | None = None) -> RefundResult:
        if request.status not in REFUNDABLE:
            if request.status in PAID_FAMILY:
                raise NotRefundable(f"This request is {request.status.value}: nothing more to refund.")
            raise NotRefundable("This request has not been paid, so there is nothing to refund.")
        total = request.total_minor or request.amount_minor
        remaining = total - request.refunded_minor
        amount = remaining if amount_minor is None else amount_minor
        if not 0 < amount <= remaining:
            raise NotRefundable("A refund must be more than zero and at most "
                                f"{format_display(remaining, request.currency)}, what is left to refund.")
        refunded = request.refunded_minor + amount
        state = PaymentState(
            provider=self.name, intent_id=request.provider_ref or self.intent_id(request), status="succeeded",
            amount_minor=total, amount_received_minor=total, currency=request.currency, request_id=request.id,
            funding=request.card_funding or "unknown", charge_id=f"sandbox_ch_{request.id}",
            paid_at=request.paid_at, provider_fee_minor=request.provider_fee_minor,
            application_fee_minor=request.application_fee_minor, refunded_minor=refunded,
        )
        return RefundResult(f"sandbox_re_{request.id}_{refunded}", amount, "succeeded", state)
