"""Whether a firm may pass the card fee on, and at what rate: the firm's
side of the card-fee rules (the client's side is in :mod:`.fees`).

* **Notice.** Visa and Mastercard require a merchant to tell them (through
  its acquirer) before it starts surcharging, 30 days ahead. A firm records
  the day it gave that notice (``clienttrack firm surcharge DOMAIN
  --notice-date``, or an admin's mail command); ``+fee`` takes effect 30
  days after it. Until then a request still goes out, without the fee, and
  the staff member is told why (:func:`why_not`).
* **Rate.** Each firm pays its own Stripe pricing, so the rate passed on is
  the firm's (``clienttrack firm set DOMAIN --card-fee-rate``), falling back
  to the gateway's ``CLIENTTRACK_CARD_FEE_RATE`` / ``_FIXED_MINOR``. Stripe's
  API does not report a connected account's pricing, so nothing reads it
  from there.

Everything here reads the firm row only; the caller passes the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from gateway.core.models import Firm, PaymentRequest
from gateway.core.money import format_display
from gateway.payments import fees
from gateway.payments.config import PaymentsConfig
from gateway.core.settings import zone

NOTICE_DAYS = 30
# The most a firm may set as its rate: Canada's cap binds well below it anyway.
MAX_RATE = Decimal("0.1")


class RateError(ValueError):
    """A card-fee rate that cannot be a firm's; the message says why."""


@dataclass(frozen=True)
class FeeTerms:
    """What the fee rules need to know about the firm for one request."""

    pass_fee: bool
    rate: Decimal
    fixed_minor: int
    country: str
    firm_region: str | None


def parse_rate(text: str) -> Decimal:
    """A rate typed as "0.029", "2.9%" or "2.9 %"; refused outside 0..10 %."""
    raw = text.strip().replace(" ", "")
    try:
        rate = Decimal(raw[:-1]) / 100 if raw.endswith("%") else Decimal(raw)
    except InvalidOperation:
        raise RateError(f"{text!r} is not a rate: write it like 0.029 or 2.9%") from None
    if not rate.is_finite() or not Decimal(0) <= rate <= MAX_RATE:
        raise RateError(f"{text!r} is outside 0% to {MAX_RATE * 100:.0f}%")
    return rate


def firm_rate(firm: Firm, config: PaymentsConfig) -> tuple[Decimal, int]:
    """The firm's card rate and fixed part (minor units), else the gateway's."""
    rate = parse_rate(firm.card_fee_rate) if firm.card_fee_rate else config.card_fee_rate
    fixed = config.card_fee_fixed_minor if firm.card_fee_fixed_minor is None else int(firm.card_fee_fixed_minor)
    return rate, fixed


def starts_on(firm: Firm) -> date | None:
    """The first day ``+fee`` works for the firm (None: no notice recorded)."""
    if firm.surcharge_notice_date is None:
        return None
    return firm.surcharge_notice_date + timedelta(days=NOTICE_DAYS)


def may_surcharge(firm: Firm, day: date) -> bool:
    start = starts_on(firm)
    return start is not None and day >= start


def why_not(firm: Firm, day: date) -> str:
    """For the staff member whose ``+fee`` was dropped: why, and what to do."""
    start = starts_on(firm)
    if start is None:
        return ("The card fee (+fee) was not added: card networks require a firm to give them notice 30 days "
                f"before it starts passing the card fee on, and {firm.name} has not recorded that notice. "
                "Once it has (ask your payment provider how), an administrator records the date by mail "
                "(subject: surcharge notice YYYY-MM-DD) and +fee works 30 days later.")
    return (f"The card fee (+fee) was not added: {firm.name} gave the card networks notice on "
            f"{firm.surcharge_notice_date.isoformat()}, and +fee works only from {start.isoformat()}, "
            f"{NOTICE_DAYS} days later.")


def local_day(firm: Firm, moment: datetime) -> date:
    return moment.astimezone(zone(firm.timezone)).date()


def terms(request: PaymentRequest, firm: Firm, config: PaymentsConfig) -> FeeTerms:
    """The fee terms of one request: its ``+fee`` counts only when the firm's
    notice had taken effect on the day the request was made."""
    rate, fixed = firm_rate(firm, config)
    allowed = request.pass_fee and may_surcharge(firm, local_day(firm, request.created_at))
    return FeeTerms(allowed, rate, fixed, firm.country, fees.normalise_province(firm.province) or None)


def quote(request: PaymentRequest, firm: Firm, config: PaymentsConfig, *, funding: str,
          province: str | None) -> fees.FeeQuote:
    """The fee quote for this request, card and client, under the firm's rules."""
    t = terms(request, firm, config)
    return fees.quote_for(request.amount_minor, request.currency, pass_fee=t.pass_fee, funding=funding,
                          province=province, rate=t.rate, fixed_minor=t.fixed_minor, country=t.country,
                          firm_region=t.firm_region)


def disclosure(request: PaymentRequest, firm: Firm, config: PaymentsConfig, *,
               province: str | None) -> list[tuple[str, fees.FeeQuote]]:
    t = terms(request, firm, config)
    return fees.disclosure(request.amount_minor, request.currency, pass_fee=t.pass_fee, province=province,
                           rate=t.rate, fixed_minor=t.fixed_minor, country=t.country, firm_region=t.firm_region)


def credit_fee_quote(request: PaymentRequest, firm: Firm, config: PaymentsConfig) -> fees.FeeQuote | None:
    """The credit card's quote when it carries a card fee (what the client's
    mail warns of, in any language), else None."""
    rows = disclosure(request, firm, config, province=None)
    credit = next((q for label, q in rows if label == "Credit card"), None)
    return credit if credit is not None and credit.fee_minor else None


def fee_line(request: PaymentRequest, firm: Firm, config: PaymentsConfig) -> str:
    """For the client's mail, when a card fee may apply: what it is and what
    carries none (the pay page then shows the total for each kind of card)."""
    credit = credit_fee_quote(request, firm, config)
    if credit is None:
        return ""
    return (f"paying by credit card adds a card fee of {format_display(credit.fee_minor, request.currency)} "
            f"(total {format_display(credit.total_minor, request.currency)}); none on debit or prepaid cards, "
            "nor for clients billed in Quebec")


# -- changing a firm's terms (the command line and the admin's mail command) ------------


async def set_terms(firm: Firm, *, now: datetime, actor: str, rate: str | None = None, fixed_minor: int | None = None,
                    province: str | None = None) -> Firm:
    """Change the firm's card rate, fixed part or province; an event records it."""
    from gateway.core import events

    changed: dict[str, str] = {}
    if rate is not None:
        firm.card_fee_rate = "" if rate.strip().lower() in ("", "default") else str(parse_rate(rate))
        changed["card_fee_rate"] = firm.card_fee_rate or "default"
    if fixed_minor is not None:
        if fixed_minor < 0:
            raise RateError("the fixed part of the card fee cannot be negative")
        firm.card_fee_fixed_minor = fixed_minor
        changed["card_fee_fixed_minor"] = str(fixed_minor)
    if province is not None:
        code = fees.normalise_province(province) or ""
        if code and fees.province_name(code) == code:
            raise RateError(f"{province!r} is not a Canadian province or territory")
        firm.province = code
        changed["province"] = code
    if changed:
        await firm.save(update_fields=list(changed))
        await events.record(now, actor, "firm.fee_terms", firm=firm, **changed)
    return firm


async def record_notice(firm: Firm, day: date | None, *, now: datetime, actor: str) -> Firm:
    """Record (or, with None, clear) the day the firm gave the card networks notice."""
    from gateway.core import events

    firm.surcharge_notice_date = day
    await firm.save(update_fields=["surcharge_notice_date"])
    await events.record(now, actor, "firm.surcharge_notice", firm=firm, notice=day.isoformat() if day else "",
                        starts=(starts_on(firm) or "").__str__())
    return firm


def describe(firm: Firm, config: PaymentsConfig, today: date) -> list[str]:
    """The firm's card-fee terms, for the command line and the mail reply."""
    rate, fixed = firm_rate(firm, config)
    start = starts_on(firm)
    lines = [
        f"Card fee rate: {(rate * 100).normalize():f}%" + (f" + {format_display(fixed, firm.currency)}" if fixed else "")
        + ("" if firm.card_fee_rate else " (the gateway's default)"),
        f"Located in: {firm.country}" + (f", {fees.province_name(firm.province)}" if firm.province else
                                         " (province not set: clienttrack firm set DOMAIN --province XX)"),
    ]
    if start is None:
        lines.append("Surcharge notice: not recorded, so +fee adds no fee.")
    elif today < start:
        lines.append(f"Surcharge notice: given {firm.surcharge_notice_date.isoformat()}; +fee works from "
                     f"{start.isoformat()}.")
    else:
        lines.append(f"Surcharge notice: given {firm.surcharge_notice_date.isoformat()}; +fee works since "
                     f"{start.isoformat()}.")
    if fees.normalise_province(firm.province) in fees.rule_for(firm.country).exempt_regions:
        lines.append(f"A firm in {fees.province_name(firm.province)} adds no card fee whatever +fee says.")
    return lines
