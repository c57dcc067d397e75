"""The Stripe provider: the official SDK, direct charges on each firm's
connected account.

* **One PaymentIntent per request**, created on first use with the
  deterministic idempotency key ``clienttrack-pr-<id>-v1`` on the firm's
  account (``Stripe-Account``: a direct charge), remembered in
  ``provider_ref`` and reused after. A canceled one is replaced (key
  ``clienttrack-pr-<id>-after-<old id>``); a succeeded one, or a paid
  request, is refused: a paid request cannot be paid again.
* It is created for the request's amount; when the client presses Pay,
  :meth:`StripeProvider.confirm` reads the card's funding type from the
  Payment Element's ConfirmationToken (or a PaymentMethod), sets the amount
  the fee rules allow (:mod:`gateway.payments.fees`), records the quote in
  the metadata and confirms. Card payments, Apple Pay, Google Pay and
  Klarna come through the same intent (automatic payment methods are the
  default in the SDK's pinned API version).
* ``application_fee_amount`` when the platform fee applies (not on a firm's
  first ``application_fee_free_requests`` requests).
* Connect: :meth:`connect_account`, :meth:`onboarding_link` (Account
  Links), :meth:`account_status`; :meth:`register_payment_method_domain`
  for Apple Pay / Google Pay on the pay domain; :meth:`payout_intents` for
  deposit dates.

Why the synchronous SDK in a thread (``asyncio.to_thread``) rather than the
``*_async`` methods with ``stripe.HTTPXClient()``: the async client needs
``httpx`` at run time (stripe's ``async`` extra), which our runtime
dependencies do not carry (only the dev extras do); the SDK's sync path over
``requests`` (a stripe dependency) is its most used and tested one; a
payment makes a handful of calls, so a thread each costs nothing that
matters; and the thread only does HTTP, never a Tortoise query (which must
stay on the event loop). The SDK retries network failures itself
(``max_network_retries``) with the idempotency keys we give it.

The secret key lives only inside the SDK client: it is never logged, and
``repr()`` of the provider does not show it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable

import stripe

from gateway.core.clock import Clock, system_clock
from gateway.core.models import Firm, PaymentRequest
from gateway.payments import fees
from gateway.payments.config import PaymentsConfig
from gateway.payments.provider import (
    PAID_FAMILY,
    PAYABLE,
    REFUNDABLE,
    AccountStatus,
    AlreadyPaid,
    ConfirmOutcome,
    Intent,
    NotRefundable,
    OnboardingLink,
    PayAttempt,
    PaymentError,
    PaymentsNotSetUp,
    PaymentState,
    ProviderError,
    RefundResult,
    application_fee_for,
    check_payable,
    firm_of,
    quote_for_request,
)
from gateway.payments.stripe_objects import INTENT_EXPAND, as_dict, state_from_intent

log = logging.getLogger("clienttrack.payments.stripe")

_OUTCOMES = {"succeeded": "succeeded", "processing": "processing", "requires_action": "requires_action",
             "requires_capture": "processing"}


class StripeProvider:
    name = "stripe"
    test_mode = False

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = "",
        config: PaymentsConfig | None = None,
        client: stripe.StripeClient | None = None,
        clock: Clock = system_clock,
        timeout: float = 30.0,
        max_network_retries: int = 2,
    ) -> None:
        if client is None:
            if not api_key:
                raise PaymentsNotSetUp("Stripe needs a secret key (CLIENTTRACK_STRIPE_SECRET_KEY).")
            client = stripe.StripeClient(
                api_key,
                base_addresses={"api": api_base.rstrip("/")} if api_base else None,
                max_network_retries=max_network_retries,
                http_client=stripe.RequestsClient(timeout=timeout),
            )
        self._client = client
        self.config = config or PaymentsConfig()
        self.clock = clock
        self.livemode = api_key.startswith(("sk_live_", "rk_live_"))

    def __repr__(self) -> str:
        return f"StripeProvider({'live' if self.livemode else 'test'} mode)"

    # -- the calls --------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one SDK call in a thread; answers come back as plain dicts."""
        def run() -> Any:
            result = fn(*args)
            return result.to_dict() if hasattr(result, "to_dict") else result

        try:
            return await asyncio.to_thread(run)
        except stripe.CardError:
            raise
        except stripe.StripeError as exc:
            # Stripe's messages never carry the key (it masks it); log the kind, not the request.
            log.warning("stripe call failed: %s (%s, http %s)", type(exc).__name__, exc.code or "-",
                        exc.http_status or "-")
            if exc.user_message:
                message = exc.user_message
            elif isinstance(exc, stripe.InvalidRequestError):
                message = "The payment service refused this step; please reload the page and try again."
            else:
                message = "The payment service could not be reached; please try again in a minute."
            raise ProviderError(message) from exc

    @staticmethod
    def _opts(account: str = "", key: str = "") -> dict[str, str]:
        options: dict[str, str] = {}
        if account:
            options["stripe_account"] = account
        if key:
            options["idempotency_key"] = key
        return options

    @staticmethod
    def _ready_account(firm: Firm) -> str:
        if not firm.stripe_account_id:
            raise PaymentsNotSetUp(f"{firm.name} has not set up online payments yet: please contact them to pay.")
        if not firm.payments_ready:
            raise PaymentsNotSetUp(f"{firm.name} has not finished setting up online payments yet: "
                                   "please contact them to pay.")
        return firm.stripe_account_id

    # -- PaymentIntents -----------------------------------------------------------

    async def create_or_get_intent(self, request: PaymentRequest) -> Intent:
        check_payable(request, self.clock())
        firm = await firm_of(request)
        account = self._ready_account(firm)
        pi = await self._intent_for(request, firm, account)
        return self._intent(pi, account)

    async def _intent_for(self, request: PaymentRequest, firm: Firm, account: str) -> dict:
        key = f"clienttrack-pr-{request.id}-v1"
        if request.provider == self.name and request.provider_ref:
            pi = await self._call(self._client.v1.payment_intents.retrieve, request.provider_ref, None,
                                  self._opts(account))
            if pi.get("status") == "succeeded":
                raise AlreadyPaid("This request has already been paid.")
            if pi.get("status") != "canceled":
                return pi
            key = f"clienttrack-pr-{request.id}-after-{pi['id']}"
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            # Deterministic, as the idempotency key demands the same parameters.
            "metadata": {
                "clienttrack_request_id": str(request.id),
                "request_id": str(request.id),
                "firm": firm.domain,
                "invoice": request.invoice[:200],
                "amount_minor": str(request.amount_minor),
            },
        }
        application_fee = await application_fee_for(request, self.config)
        if application_fee:
            params["application_fee_amount"] = application_fee
        pi = await self._call(self._client.v1.payment_intents.create, params, self._opts(account, key))
        await PaymentRequest.filter(id=request.id, status__in=list(PAYABLE)).update(provider=self.name,
                                                                                   provider_ref=pi["id"])
        request.provider, request.provider_ref = self.name, pi["id"]
        return pi

    def _intent(self, pi: dict, account: str) -> Intent:
        return Intent(
            provider=self.name,
            intent_id=pi["id"],
            client_secret=pi.get("client_secret") or "",
            status=pi.get("status") or "",
            amount_minor=int(pi.get("amount") or 0),
            currency=str(pi.get("currency") or "").upper(),
            account=account,
            publishable_key=self.config.publishable_key,
        )

    async def confirm(self, request: PaymentRequest, attempt: PayAttempt) -> ConfirmOutcome:
        check_payable(request, self.clock())
        firm = await firm_of(request)
        account = self._ready_account(firm)
        pi = await self._intent_for(request, firm, account)
        intent = self._intent(pi, account)
        if pi.get("status") in ("processing", "requires_capture"):
            state = await self.retrieve_intent(pi["id"], account)
            quote = quote_for_request(request, firm, self.config, funding=state.funding, province=state.province)
            return ConfirmOutcome("processing", "Your payment is being processed.", intent, quote, state)

        funding, address = await self._funding_and_address(attempt, account)
        province = fees.billing_province(address, attempt.province)
        quote = quote_for_request(request, firm, self.config, funding=funding, province=province)
        if quote.total_minor != attempt.approved(request):
            # The card is known now and its total is not the one the Payment
            # Element (and a wallet sheet) showed: charge nothing; the page
            # shows this total, updates the Element and asks again.
            return ConfirmOutcome("confirm_amount", "Confirm the total for this card.", intent, quote)
        update: dict[str, Any] = {
            "amount": quote.total_minor,
            "metadata": {"fee_minor": str(quote.fee_minor), "funding": funding, "province": province or "",
                         "fee_rule": quote.rule},
        }
        if attempt.payment_method and not attempt.confirmation_token:
            update["payment_method"] = attempt.payment_method
        await self._call(self._client.v1.payment_intents.update, pi["id"], update, self._opts(account))

        # Stripe's guard for surcharged payments (its surcharging guide): the
        # confirmation fails unless the amount is exactly the approved total.
        params: dict[str, Any] = {"expand": INTENT_EXPAND, "amount_to_confirm": quote.total_minor}
        if attempt.confirmation_token:
            params["confirmation_token"] = attempt.confirmation_token
        if attempt.return_url:
            params["return_url"] = attempt.return_url
        # The same token (or method) and amount never confirms twice.
        key = f"clienttrack-pr-{request.id}-confirm-{attempt.confirmation_token or attempt.payment_method}-{quote.total_minor}"
        try:
            confirmed = await self._call(self._client.v1.payment_intents.confirm, pi["id"], params,
                                         self._opts(account, key))
        except stripe.CardError as exc:
            state = await self.retrieve_intent(pi["id"], account)
            message = exc.user_message or "Your card was declined."
            if not state.failure_message:
                state = replace(state, failure_message=message, status="requires_payment_method")
            return ConfirmOutcome("declined", message, intent, quote, state)
        state = state_from_intent(confirmed, account=account)
        outcome = _OUTCOMES.get(state.status, "declined")
        message = {
            "succeeded": "Payment approved.",
            "processing": "Your payment is being processed.",
            "requires_action": "Your bank asks you to confirm the payment.",
        }.get(outcome, state.failure_message or "The payment did not go through; please try another card.")
        return ConfirmOutcome(outcome, message, self._intent(confirmed, account), quote, state)

    async def _funding_and_address(self, attempt: PayAttempt, account: str) -> tuple[str, dict | None]:
        if attempt.confirmation_token:
            token = await self._call(self._client.v1.confirmation_tokens.retrieve, attempt.confirmation_token, None,
                                     self._opts(account))
            preview = token.get("payment_method_preview") or {}
        elif attempt.payment_method:
            preview = await self._call(self._client.v1.payment_methods.retrieve, attempt.payment_method, None,
                                       self._opts(account))
        else:
            raise PaymentError("Choose a payment method first.")
        funding = (preview.get("card") or {}).get("funding") if preview.get("type") == "card" else "unknown"
        address = (preview.get("billing_details") or {}).get("address")
        return fees.normalise_funding(funding), address

    async def retrieve(self, request: PaymentRequest) -> PaymentState | None:
        if request.provider != self.name or not request.provider_ref:
            return None
        firm = await firm_of(request)
        return await self.retrieve_intent(request.provider_ref, firm.stripe_account_id)

    async def retrieve_intent(self, intent_id: str, account: str = "") -> PaymentState:
        """A fresh snapshot of one PaymentIntent (what webhooks re-read)."""
        pi = await self._call(self._client.v1.payment_intents.retrieve, intent_id, {"expand": INTENT_EXPAND},
                              self._opts(account))
        return state_from_intent(pi, account=account)

    async def refund(self, request: PaymentRequest, amount_minor: int | None = None) -> RefundResult:
        if request.status not in REFUNDABLE:
            if request.status in PAID_FAMILY:
                raise NotRefundable(f"This request is {request.status.value}: nothing more to refund online.")
            raise NotRefundable("This request has not been paid, so there is nothing to refund.")
        if request.provider != self.name or not request.provider_ref:
            raise NotRefundable("This request was not paid through Stripe.")
        total = request.total_minor or request.amount_minor
        remaining = total - request.refunded_minor
        amount = remaining if amount_minor is None else amount_minor
        if not isinstance(amount, int) or not 0 < amount <= remaining:
            raise NotRefundable("A refund must be more than zero and at most what is left of the payment.")
        firm = await firm_of(request)
        params: dict[str, Any] = {"payment_intent": request.provider_ref, "amount": amount,
                                  "metadata": {"request_id": str(request.id)}}
        if request.application_fee_minor:
            # The platform gives back its share in proportion.
            params["refund_application_fee"] = True
        key = f"clienttrack-pr-{request.id}-refund-{request.refunded_minor}-{amount}"
        refund = await self._call(self._client.v1.refunds.create, params,
                                  self._opts(firm.stripe_account_id, key))
        state = await self.retrieve_intent(request.provider_ref, firm.stripe_account_id)
        return RefundResult(refund["id"], int(refund.get("amount") or amount), str(refund.get("status") or ""), state)

    # -- Connect ------------------------------------------------------------------------

    async def connect_account(self, firm: Firm) -> str:
        """The firm's connected account, created if it has none (the caller
        stores the id). Stripe hosts the onboarding, the dashboard and the
        payouts; the firm pays the processing fees (direct charges)."""
        if firm.stripe_account_id:
            return firm.stripe_account_id
        params = {
            "country": firm.country,
            "default_currency": firm.currency.lower(),
            "business_profile": {"name": firm.name},
            "metadata": {"firm_id": str(firm.id), "firm_domain": firm.domain},
            "controller": {
                "fees": {"payer": "account"},
                "losses": {"payments": "stripe"},
                "stripe_dashboard": {"type": "full"},
            },
        }
        account = await self._call(self._client.v1.accounts.create, params,
                                   self._opts(key=f"clienttrack-firm-{firm.id}-account-v1"))
        return account["id"]

    async def onboarding_link(self, firm: Firm, refresh_url: str, return_url: str) -> OnboardingLink:
        if not firm.stripe_account_id:
            raise PaymentsNotSetUp("The firm has no Stripe account yet: create it first.")
        link = await self._call(self._client.v1.account_links.create, {
            "account": firm.stripe_account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        })
        expires = link.get("expires_at")
        return OnboardingLink(firm.stripe_account_id, link["url"],
                              datetime.fromtimestamp(expires, timezone.utc) if expires else None)

    async def account_status(self, account_id: str) -> AccountStatus:
        account = await self._call(self._client.v1.accounts.retrieve, account_id)
        return AccountStatus(account["id"], bool(account.get("charges_enabled")),
                             bool(account.get("details_submitted")), bool(account.get("payouts_enabled")))

    async def account_ready(self, firm: Firm) -> AccountStatus:
        if not firm.stripe_account_id:
            return AccountStatus("", False)
        return await self.account_status(firm.stripe_account_id)

    async def register_payment_method_domain(self, domain: str, *, account: str = "") -> dict:
        """Register the pay page's domain for Apple Pay / Google Pay (on the
        firm's account for direct charges, else the platform's)."""
        domain = domain.strip().lower().rstrip(".")
        result = await self._call(self._client.v1.payment_method_domains.create, {"domain_name": domain},
                                  self._opts(account, f"clienttrack-pmd-{account or 'platform'}-{domain}"))
        return {"id": result.get("id", ""), "domain_name": result.get("domain_name", domain),
                "enabled": bool(result.get("enabled")),
                "apple_pay": (result.get("apple_pay") or {}).get("status", ""),
                "google_pay": (result.get("google_pay") or {}).get("status", "")}

    async def payout_intents(self, payout_id: str, account: str) -> list[str]:
        """The PaymentIntents a payout settles (its balance transactions' charges)."""
        list_ = self._client.v1.balance_transactions.list
        params = {"payout": payout_id, "expand": ["data.source"], "limit": 100}

        def collect() -> list[str]:
            found = []
            for txn in list_(params, self._opts(account)).auto_paging_iter():
                source = as_dict(txn.to_dict().get("source"))
                intent = source.get("payment_intent")
                if source.get("object") == "charge" and intent:
                    found.append(intent if isinstance(intent, str) else as_dict(intent).get("id", ""))
            return [i for i in found if i]

        try:
            return await asyncio.to_thread(collect)
        except stripe.StripeError as exc:
            log.warning("stripe payout listing failed: %s", type(exc).__name__)
            raise ProviderError("The payment service could not be reached; please try again later.") from exc
