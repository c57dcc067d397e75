"""The card fee in the client's words, for the pages and the client's mail:
the rule that applied (or why none did), and what a card fee would add. The
fee policy (fees.py) writes its sentences in English; French is written
here from the rule each quote names."""

from __future__ import annotations

from decimal import Decimal

from gateway.core.language import Words
from gateway.core.models import Firm, PaymentRequest
from gateway.payments import fees, surcharge
from gateway.payments.config import PaymentsConfig

_FR_CARDS = {"credit": "cartes de crédit", "debit": "cartes de débit", "prepaid": "cartes prépayées"}


def _fr_percent(rate: Decimal) -> str:
    return format((rate * 100).normalize(), "f").replace(".", ",") + "\u00a0%"


def rule_text(t: Words, quote: fees.FeeQuote, config: PaymentsConfig, firm: Firm) -> str:
    """The sentence that explains the fee (or its absence). English is the
    fee policy's own sentence; French is written from the rule it names."""
    country = firm.country
    if t.lang == "en" or fees.rule_for(country).country != "CA":
        return quote.rule_applied_text
    fee = t.amount(quote.fee_minor, quote.currency)
    cards = _FR_CARDS.get(quote.funding, "cartes")
    firm_rate, fixed = surcharge.firm_rate(firm, config)
    rate = _fr_percent(firm_rate)
    if fixed:
        rate += " + " + t.amount_short(fixed, quote.currency)
    rule = quote.rule
    if rule.endswith("-capped"):
        cap = _fr_percent(fees.rule_for(country).cap_rate or Decimal(0))
        return (f"Frais de carte de {fee}\u00a0: les frais de traitement des {cards} ({rate}), "
                f"plafonnés à {cap} du montant au Canada.")
    if rule.endswith("-rate"):
        return f"Frais de carte de {fee}\u00a0: les frais de traitement des {cards} ({rate})."
    if rule == "no-fee-funding":
        if quote.funding in _FR_CARDS:
            return f"Aucuns frais sur les {cards} au Canada."
        return "Aucuns frais pour ce mode de paiement."
    if rule == "no-fee-firm-region":
        return "Aucuns frais de carte\u00a0: les cabinets situés au Québec n’en facturent pas."
    if rule == "no-fee-region":
        return ("Aucuns frais de carte\u00a0: ils ne sont pas facturés aux clients dont l’adresse de "
                "facturation est au Québec.")
    if rule == "no-fee-small":
        return "Aucuns frais de carte\u00a0: sur un si petit montant, ils s’arrondissent à zéro."
    return "Aucuns frais de carte."


def fee_line(request: PaymentRequest, firm: Firm, config: PaymentsConfig, t: Words) -> str:
    """For the client's mail, when a card fee may apply: what it is and what
    carries none, in the client's language ("" when no fee applies)."""
    if t.lang == "en":
        return surcharge.fee_line(request, firm, config)
    credit = surcharge.credit_fee_quote(request, firm, config)
    if credit is None:
        return ""
    return (f"payer par carte de crédit ajoute des frais de carte de {t.amount(credit.fee_minor, request.currency)} "
            f"(total {t.amount(credit.total_minor, request.currency)}); aucuns frais sur les cartes de débit ou "
            "prépayées, ni pour les clients facturés au Québec")
