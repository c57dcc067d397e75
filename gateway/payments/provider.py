"""The payment-provider interface, its shared types, and the choice of one.

Two providers implement :class:`PaymentProvider`: ``sandbox`` (a TEST
checkout with Stripe's test card numbers, no money moves) and ``stripe``
(the official SDK, direct charges on the firm's connected account). With
neither, :class:`NoProvider` says online payment is not set up.

:func:`provider_for` follows ``settings.payment_provider``, which is
'sandbox' only under ``--demo`` or ``CLIENTTRACK_PAYMENTS=sandbox``: a
gateway started without --demo and without Stripe keys never lets anyone
"pay" with a test card.

A provider talks to the outside world and reports what it saw as a
:class:`PaymentState` (a snapshot of one payment). It never changes a
request's status itself: :mod:`gateway.payments.ledger` applies snapshots,
the same way whether they come from a webhook, the return page or the
sandbox checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from gateway.core.models import Firm, PaymentRequest, RequestStatus
from gateway.payments import fees
from gateway.payments.config import PaymentsConfig

# A client may pay these (FAILED: the last attempt was declined; try again).
PAYABLE = frozenset({RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED})
# Money arrived at some point.
PAID_FAMILY = frozenset({RequestStatus.PAID, RequestStatus.PARTIALLY_REFUNDED, RequestStatus.REFUNDED,
                         RequestStatus.DISPUTED})
REFUNDABLE = frozenset({RequestStatus.PAID, RequestStatus.PARTIALLY_REFUNDED})


class PaymentError(Exception):
    """A payment step that cannot go ahead; ``str()`` is fit for the client."""


class PaymentsNotSetUp(PaymentError):
    pass


class NotPayable(PaymentError):
    pass


class AlreadyPaid(NotPayable):
    pass


class NotRefundable(PaymentError):
    pass


class ProviderError(PaymentError):
    """The provider could not be reached or refused the call; try again later."""


@dataclass(frozen=True)
class Intent:
    """One request's payment at the provider (a Stripe PaymentIntent)."""

    provider: str
    intent_id: str
    # For Stripe.js (the Payment Element); "" for the sandbox.
    client_secret: str
    status: str
    amount_minor: int
    currency: str
    account: str = ""
    publishable_key: str = ""


@dataclass(frozen=True)
class PayAttempt:
    """What the pay page sends when the client presses Pay."""

    # The province the client says they are billed in ("QC", "Quebec"...).
    province: str | None = None
    # Sandbox: the typed card number.
    card_number: str = ""
    # Stripe: a ConfirmationToken from stripe.createConfirmationToken (the
    # Payment Element), or a PaymentMethod id (server-side confirmation).
    confirmation_token: str = ""
    payment_method: str = ""
    # Stripe: where 3-D Secure or Klarna redirects come back to.
    return_url: str = ""
    # The total the client approved for this card (the Payment Element's and
    # the wallet sheet's amount); None: the request's own amount, what the
    # page offers first. A card whose total differs is not charged: the
    # outcome is "confirm_amount" and the page asks the client first.
    approved_total: int | None = None

    def approved(self, request: PaymentRequest) -> int:
        return request.amount_minor if self.approved_total is None else self.approved_total


@dataclass(frozen=True)
class PaymentState:
    """A snapshot of one payment as the provider sees it now."""

    provider: str
    intent_id: str
    # Stripe's PaymentIntent status: requires_payment_method, requires_confirmation,
    # requires_action, processing, succeeded, canceled.
    status: str
    amount_minor: int
    amount_received_minor: int
    currency: str
    request_id: int | None = None
    funding: str = "unknown"
    province: str | None = None
    charge_id: str = ""
    paid_at: datetime | None = None
    # The provider's fee in the payment's own currency (converted when the
    # provider settled in another one; see the settlement fields).
    provider_fee_minor: int | None = None
    application_fee_minor: int | None = None
    # Where the money landed, from Stripe's balance transaction: its currency
    # (the firm's settlement currency), the exchange rate from the payment's
    # currency ("" when none) and the net in that currency.
    settlement_currency: str = ""
    exchange_rate: str = ""
    settlement_net_minor: int | None = None
    refunded_minor: int = 0
    disputed: bool = False
    failure_message: str = ""
    account: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded" and self.amount_received_minor > 0


@dataclass(frozen=True)
class ConfirmOutcome:
    # "succeeded", "processing", "requires_action" (Stripe.js handles the
    # next step with intent.client_secret), "declined" (try another card) or
    # "confirm_amount" (nothing charged: this card's total, in ``quote``,
    # differs from what the client approved; ask them, then confirm again).
    outcome: str
    message: str
    intent: Intent
    quote: fees.FeeQuote
    state: PaymentState | None = None


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    amount_minor: int
    status: str
    state: PaymentState | None = None


@dataclass(frozen=True)
class OnboardingLink:
    account_id: str
    url: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AccountStatus:
    account_id: str
    charges_enabled: bool
    details_submitted: bool = False
    payouts_enabled: bool = False


@runtime_checkable
class PaymentProvider(Protocol):
    name: str
    config: PaymentsConfig
    # True for the sandbox: every page and mail about it says TEST.
    test_mode: bool

    async def create_or_get_intent(self, request: PaymentRequest) -> Intent:
        """The request's one payment intent, created on first use and reused
        after. Raises AlreadyPaid / NotPayable / PaymentsNotSetUp."""

    async def confirm(self, request: PaymentRequest, attempt: PayAttempt) -> ConfirmOutcome:
        """Charge the client: sets the amount for the card's funding type
        (the fee rules) and confirms. A decline is an outcome, not an error."""

    async def retrieve(self, request: PaymentRequest) -> PaymentState | None:
        """The request's payment as the provider sees it now (None: none yet)."""

    async def refund(self, request: PaymentRequest, amount_minor: int | None = None) -> RefundResult:
        """Give back ``amount_minor`` (everything left when None)."""


class NoProvider:
    """Online payment is not set up: requests still go out, nobody can pay."""

    name = "none"
    test_mode = False
    MESSAGE = "Online payment is not set up yet: please contact the firm to pay this request."

    def __init__(self, config: PaymentsConfig | None = None, message: str = MESSAGE) -> None:
        self.config = config or PaymentsConfig()
        self.message = message

    async def create_or_get_intent(self, request: PaymentRequest) -> Intent:
        raise PaymentsNotSetUp(self.message)

    async def confirm(self, request: PaymentRequest, attempt: PayAttempt) -> ConfirmOutcome:
        raise PaymentsNotSetUp(self.message)

    async def retrieve(self, request: PaymentRequest) -> PaymentState | None:
        return None

    async def refund(self, request: PaymentRequest, amount_minor: int | None = None) -> RefundResult:
        raise PaymentsNotSetUp("Online payment is not set up, so there is nothing to refund online.")


# -- helpers the providers share ------------------------------------------------


async def firm_of(request: PaymentRequest) -> Firm:
    firm = getattr(request, "firm", None)
    if isinstance(firm, Firm):
        return firm
    firm = await Firm.get(id=request.firm_id)
    request.firm = firm
    return firm


def check_payable(request: PaymentRequest, now: datetime | None = None) -> None:
    if request.status in PAID_FAMILY:
        raise AlreadyPaid("This request has already been paid.")
    if request.status is RequestStatus.CANCELLED:
        raise NotPayable("This request was cancelled by the firm.")
    if request.status is RequestStatus.EXPIRED or (now is not None and request.expires_at <= now):
        raise NotPayable("This request has expired: please contact the firm.")
    if request.status not in PAYABLE:
        raise NotPayable("This request cannot be paid online.")
    if request.flagged:
        raise NotPayable("A payment for this request is being checked by the firm: please contact them.")


def quote_for_request(request: PaymentRequest, firm: Firm, config: PaymentsConfig, *,
                      funding: str, province: str | None) -> fees.FeeQuote:
    """The fee quote for this request, card and client, under the firm's rules
    (its location, its rate, whether its notice to the networks took effect)."""
    from gateway.payments import surcharge

    return surcharge.quote(request, firm, config, funding=funding, province=province)


def allowed_totals(request: PaymentRequest, firm: Firm, config: PaymentsConfig, *,
                   funding: str, province: str | None) -> set[int]:
    """The amounts that settle the request for a card of ``funding``: the
    amount itself (the firm absorbs the fee) or the amount plus the fee the
    rules allow. Anything else is a mismatch."""
    quote = quote_for_request(request, firm, config, funding=funding, province=province)
    return {request.amount_minor, quote.total_minor}


async def application_fee_for(request: PaymentRequest, config: PaymentsConfig) -> int:
    """The platform's fee on this request: none on the firm's first
    ``application_fee_free_requests`` requests."""
    if not config.application_fee_on:
        return 0
    ordinal = await PaymentRequest.filter(firm_id=request.firm_id, id__lte=request.id).count()
    if ordinal <= config.application_fee_free_requests:
        return 0
    return config.application_fee(request.amount_minor)
