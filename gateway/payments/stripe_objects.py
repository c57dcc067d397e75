"""Reading Stripe's objects (a PaymentIntent, a payout) into ours, as the
Stripe provider and the webhooks receive them; works on Stripe's answers and
on localstripe's."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from gateway.core.money import CURRENCY_DECIMALS
from gateway.payments import fees
from gateway.payments.provider import PaymentState

# What a re-read of a PaymentIntent expands: the charge (funding, refunds,
# disputes), its balance transaction (Stripe's fee) and the payment method
# (funding, when the charge does not say).
INTENT_EXPAND = ["latest_charge.balance_transaction", "payment_method"]


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), timezone.utc)
    except (TypeError, ValueError):
        return None


def payout_arrival(payout: dict) -> date | None:
    """The day a payout reaches the bank (Stripe gives midnight UTC of it)."""
    moment = _timestamp(payout.get("arrival_date"))
    return moment.date() if moment else None


def to_charge_currency(minor: int, rate: Any, settlement: str, charge: str) -> int:
    """An amount of the balance transaction (``settlement`` currency) in the
    charge's currency: divided by Stripe's exchange rate (charge -> settlement),
    with both currencies' minor units, rounded half up."""
    if not rate or not settlement or not charge or settlement == charge:
        return minor
    major = Decimal(minor).scaleb(-CURRENCY_DECIMALS.get(settlement, 2)) / Decimal(str(rate))
    return int(major.scaleb(CURRENCY_DECIMALS.get(charge, 2)).to_integral_value(rounding=ROUND_HALF_UP))


def state_from_intent(pi: dict, *, account: str = "") -> PaymentState:
    """A :class:`PaymentState` from a PaymentIntent expanded with
    INTENT_EXPAND (works on Stripe's answers and localstripe's)."""
    charge = as_dict(pi.get("latest_charge"))
    method = as_dict(pi.get("payment_method"))
    metadata = {str(k): str(v) for k, v in as_dict(pi.get("metadata")).items()}
    status = str(pi.get("status") or "")
    received = pi.get("amount_received")
    charge_ok = charge.get("status") == "succeeded" and charge.get("captured", True)
    if received is None:  # localstripe has no amount_received
        received = charge.get("amount") if status == "succeeded" and charge_ok else 0

    details = as_dict(charge.get("payment_method_details"))
    funding = None
    if details:
        funding = as_dict(details.get("card")).get("funding") if details.get("type") == "card" else "unknown"
    if funding is None and method.get("type") == "card":
        funding = as_dict(method.get("card")).get("funding")

    balance = as_dict(charge.get("balance_transaction"))
    provider_fee = None
    settlement = str(balance.get("currency") or "").upper()
    rate = balance.get("exchange_rate")
    if balance:
        parts = balance.get("fee_details") or []
        if parts:
            provider_fee = sum(int(p.get("amount") or 0) for p in parts if p.get("type") != "application_fee")
        else:
            provider_fee = int(balance.get("fee") or 0)
        # The balance transaction is in the firm's settlement currency: a USD
        # payment to a CAD account has its fee in CAD. Back to the payment's
        # currency at the transaction's own rate, so a row adds up in one currency.
        provider_fee = to_charge_currency(provider_fee, rate, settlement, str(pi.get("currency") or "").upper())
    application_fee = charge.get("application_fee_amount", pi.get("application_fee_amount"))

    request_id = metadata.get("clienttrack_request_id") or metadata.get("request_id") or ""
    failure = as_dict(pi.get("last_payment_error")).get("message") or ""
    return PaymentState(
        provider="stripe",
        intent_id=str(pi["id"]),
        status=status,
        amount_minor=int(pi.get("amount") or 0),
        amount_received_minor=int(received or 0),
        currency=str(pi.get("currency") or "").upper(),
        request_id=int(request_id) if request_id.isdigit() else None,
        funding=fees.normalise_funding(funding),
        province=fees.normalise_province(metadata.get("province") or None),
        charge_id=str(charge.get("id") or ""),
        paid_at=_timestamp(charge.get("created")) if status == "succeeded" else None,
        provider_fee_minor=provider_fee,
        settlement_currency=settlement,
        exchange_rate=str(Decimal(str(rate))) if rate not in (None, "") else "",
        settlement_net_minor=int(balance["net"]) if balance.get("net") is not None else None,
        application_fee_minor=int(application_fee) if application_fee else None,
        refunded_minor=int(charge.get("amount_refunded") or 0),
        disputed=bool(charge.get("disputed")),
        failure_message=str(failure)[:300],
        account=account,
        metadata=metadata,
    )
