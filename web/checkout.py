"""What the pay and thank-you pages show, in the client's language: the
card fee per kind of card (before paying), the lines of the thank-you page
(after), and whether a request can be paid online at all. The routes are
in web/pay.py; the numbers all come from gateway.payments (fees, receipts),
so the pages, the receipt and the ledger cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.models import Firm, PaymentRequest
from gateway.core.settings import zone
from gateway.payments import fees, receipts, surcharge
from gateway.payments.config import PaymentsConfig
from gateway.payments.feewords import rule_text
from gateway.payments.provider import PaymentProvider, quote_for_request
from web.i18n import Translator

# fees.disclosure's row labels, and the strings the pages show for them.
_ROW_KEYS = {
    "Any payment method": "pay_row_any",
    "Credit card": "pay_row_credit",
    "Debit or prepaid card, or Klarna": "pay_row_debit",
    "Debit card": "pay_row_debit_only",
    "Prepaid card": "pay_row_prepaid",
    "Other payment methods": "pay_row_other",
}
# The provinces whose clients never pay a card fee, as the form offers them.
PROVINCE_CHOICES = (("", "pay_province_other"), ("QC", "pay_province_qc"))


def online_payment(provider: PaymentProvider | None, firm: Firm) -> bool:
    """True when the client can pay this firm online now: the sandbox (demo),
    or Stripe once the firm's account takes charges. NoProvider: never."""
    if provider is None or provider.name == "none":
        return False
    if provider.name == "stripe":
        return bool(firm.stripe_account_id and firm.payments_ready)
    return True


def read_province(value: object) -> str | None:
    """The billing province the form sent: only the choices it offers count."""
    province = fees.normalise_province(value if isinstance(value, str) else None)
    return province if province in {code for code, _ in PROVINCE_CHOICES if code} else None


@dataclass(frozen=True)
class Row:
    label: str
    total: str
    note: str
    rule: str
    fee_minor: int


@dataclass(frozen=True)
class Disclosure:
    rows: tuple[Row, ...]
    # A client billed in an exempt province (Quebec) would pay less: ask.
    ask_province: bool


def disclosure(t: Translator, request: PaymentRequest, firm: Firm, config: PaymentsConfig, *,
               province: str | None, wallets: bool) -> Disclosure:
    """The totals for each kind of card, as the pay page shows them before
    the client pays (``wallets``: the Payment Element also offers Klarna)."""
    def rows_for(region: str | None) -> list[tuple[str, fees.FeeQuote]]:
        return surcharge.disclosure(request, firm, config, province=region)

    rows = []
    for label, quote in rows_for(province):
        key = _ROW_KEYS.get(label)
        if key == "pay_row_debit" and wallets:
            key = "pay_row_debit_klarna"
        fee = t.amount(quote.fee_minor, request.currency)
        rule = rule_text(t, quote, config, firm)
        if key in ("pay_row_debit", "pay_row_debit_klarna") and quote.rule == "no-fee-funding":
            # One row for several kinds of card: one sentence for them all.
            rule = t(key.replace("_row_", "_rule_"))
        rows.append(Row(
            label=t(key) if key else label,
            total=t.amount(quote.total_minor, request.currency),
            note=t("pay_includes_fee", fee=fee) if quote.fee_minor else t("pay_no_fee"),
            rule=rule,
            fee_minor=quote.fee_minor,
        ))
    exempt = fees.rule_for(firm.country).exempt_regions
    ask = bool(exempt and any(q.fee_minor for _, q in rows_for(None)))
    return Disclosure(tuple(rows), ask)


@dataclass(frozen=True)
class CardTotal:
    """What the card the client entered costs, shown before it is charged
    when it is not the amount the page offered (a credit card with +fee)."""

    title: str
    detail: str
    rule: str
    total_minor: int
    button: str


def card_total(t: Translator, request: PaymentRequest, firm: Firm, config: PaymentsConfig,
               quote: fees.FeeQuote, *, test: bool = False) -> CardTotal:
    total = t.amount(quote.total_minor, request.currency)
    detail = t("pay_this_card_fee", amount=t.amount(request.amount_minor, request.currency),
               fee=t.amount(quote.fee_minor, request.currency)) if quote.fee_minor else t("pay_no_fee")
    return CardTotal(
        title=t("pay_this_card", total=total),
        detail=detail,
        rule=rule_text(t, quote, config, firm),
        total_minor=quote.total_minor,
        button=t("pay_confirm_total_test" if test else "pay_confirm_total", total=total),
    )


# -- after paying -------------------------------------------------------------------


def paid_quote(request: PaymentRequest, firm: Firm, config: PaymentsConfig) -> fees.FeeQuote | None:
    """The quote that explains what was paid. The province is not stored, so
    try without one, then as an exempt one: the quote whose fee matches."""
    funding = request.card_funding or "unknown"
    paid_fee = request.fee_minor or 0
    for province in (None, *sorted(fees.rule_for(firm.country).exempt_regions)):
        quote = quote_for_request(request, firm, config, funding=funding, province=province)
        if quote.fee_minor == paid_fee:
            return quote
    return None


@dataclass(frozen=True)
class Thanks:
    headline: str
    reference: str
    lines: tuple[tuple[str, str], ...]
    fee_rule: str
    test_mode: bool
    refunded: str


def thanks(t: Translator, request: PaymentRequest, firm: Firm, config: PaymentsConfig) -> Thanks:
    """The thank-you page: "You paid $102.40 to Demo Accounting", the
    reference, and what made up the total, in the client's language. The
    reference and the TEST mark are the receipt's."""
    currency = request.currency
    total = request.total_minor if request.total_minor is not None else request.amount_minor
    # The firm's own currency goes without its code in the sentence ("$102.40");
    # the lines below always carry it.
    said = t.amount_short(total, currency) if currency == firm.currency else t.amount(total, currency)
    lines: list[tuple[str, str]] = []
    if request.invoice:
        lines.append((t("invoice"), request.invoice))
    lines.append((t("paid_amount"), t.amount(request.amount_minor, currency)))
    if request.fee_minor:
        lines.append((t("paid_card_fee"), t.amount(request.fee_minor, currency)))
    lines.append((t("paid_total"), t.amount(total, currency)))
    if request.paid_at is not None:
        lines.append((t("paid_on"), t.date(request.paid_at.astimezone(zone(firm.timezone)).date())))
    funding = request.card_funding if request.card_funding in ("credit", "debit", "prepaid") else "other"
    lines.append((t("paid_with"), t(f"paid_with_{funding}")))
    if request.provider_ref:
        lines.append((t("paid_payment_id"), request.provider_ref))
    quote = paid_quote(request, firm, config) if request.pass_fee else None
    refunded = t("paid_refunded_part", amount=t.amount(request.refunded_minor, currency)) \
        if request.refunded_minor else ""
    return Thanks(
        headline=t("paid_headline", amount=said, firm=firm.name),
        reference=receipts.reference(request),
        lines=tuple(lines),
        fee_rule=rule_text(t, quote, config, firm) if quote is not None else "",
        test_mode=receipts.is_test(request),
        refunded=refunded,
    )
