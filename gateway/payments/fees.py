"""The card-fee policy: what a client pays on top when the firm passes the
card fee on (``+fee``), kept as data per country.

The fee is the firm's own card rate on the invoice amount, never on the
fee itself (a surcharge may not exceed the merchant's cost of acceptance,
so no "gross-up")::

    fee = floor(amount * rate) + fixed                       (in minor units)

rounded *down* to the minor unit (the cent; the yen for JPY), then held within
the card rules of the firm's country. The rate is the firm's own
(``Firm.card_fee_rate``; the gateway's setting when it has none), as each
firm pays its own Stripe pricing. Everything is ``Decimal`` on integers of
minor units; a float is refused, never rounded.

Country rules (``COUNTRY_RULES``):

* **CA (Canada)** — a fee only on *credit* cards: none on debit or prepaid
  cards (Visa/Mastercard Canada surcharge rules, effective 2022-10-06), at
  most **2.4 %** of the amount (the networks' cap on a Canadian surcharge;
  rounded *down* to the cent so it is never exceeded), and none at all for
  clients billed in **Quebec**, nor by a firm located in Quebec (the
  Consumer Protection Act forbids it there). With the default rate of
  2.9 % + $0.50 the cap binds on a credit card: a $100.00 request costs
  $102.40 (the rate alone would be $3.40), and $100.00 on a debit card.
* **any other country** (``DEFAULT_RULE``) — *no fee*. Surcharge law differs
  (the EU and the UK ban it on consumer cards; US states differ), so a firm
  outside Canada gets no fee until its country has a row here. Adding one is
  one ``CountryRule``.

A card whose funding is unknown (Klarna, a wallet that does not tell us)
never carries a fee: we only surcharge what we know is a credit card.
"""

from __future__ import annotations

import functools
import gettext
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

import pycountry

from gateway.core.money import CURRENCY_DECIMALS, CURRENCY_SYMBOLS, format_display

Funding = Literal["credit", "debit", "prepaid", "unknown"]
FUNDINGS: tuple[str, ...] = ("credit", "debit", "prepaid", "unknown")

# The product page: "interchange fees of 2.9% and $0.50 per transaction".
DEFAULT_RATE = Decimal("0.029")
DEFAULT_FIXED_MINOR = 50

_FUNDING_NAMES = {
    "credit": "credit card",
    "debit": "debit card",
    "prepaid": "prepaid card",
    "unknown": "this payment method",
}


@dataclass(frozen=True)
class CountryRule:
    country: str
    name: str
    # Funding types that may carry a fee at all.
    fee_on: frozenset[str]
    # Largest fee as a fraction of the amount; None: only the gross-up limits it.
    cap_rate: Decimal | None
    # Where the client is billed (ISO 3166-2 subdivision code) and no fee is allowed.
    exempt_regions: frozenset[str]

    def region_name(self, code: str) -> str:
        return province_name(code) if self.country == "CA" else code


COUNTRY_RULES: dict[str, CountryRule] = {
    "CA": CountryRule(
        country="CA",
        name="Canada",
        fee_on=frozenset({"credit"}),
        cap_rate=Decimal("0.024"),
        exempt_regions=frozenset({"QC"}),
    ),
}

# No rule on file for the country: no fee at all (see the module docstring).
DEFAULT_RULE = CountryRule(country="", name="", fee_on=frozenset(), cap_rate=None, exempt_regions=frozenset())


@dataclass(frozen=True)
class FeeQuote:
    fee_minor: int
    total_minor: int
    # One sentence for the client, shown before paying and on the receipt.
    rule_applied_text: str
    amount_minor: int = 0
    currency: str = ""
    funding: str = "unknown"
    province: str | None = None
    # A short code for machines and tests: "credit-capped", "credit-gross-up",
    # "no-fee-funding", "no-fee-region", "no-fee-country", "no-fee-small", "not-passed-on".
    rule: str = ""


def rule_for(country: str) -> CountryRule:
    return COUNTRY_RULES.get((country or "").strip().upper(), DEFAULT_RULE)


def rate_fee(amount_minor: int, rate: Decimal, fixed_minor: int) -> int:
    """The firm's own rate on ``amount_minor`` (not on amount + fee), rounded
    down to the minor unit so that it never exceeds the firm's cost."""
    _check_rate(rate)
    return int((Decimal(amount_minor) * rate).to_integral_value(rounding=ROUND_FLOOR)) + fixed_minor


def cap_minor(amount_minor: int, cap_rate: Decimal) -> int:
    """The most a capped fee may be: ``cap_rate`` of the amount, rounded down."""
    return int((Decimal(amount_minor) * cap_rate).to_integral_value(rounding=ROUND_FLOOR))


def quote(
    amount_minor: int,
    currency: str,
    funding: str,
    province: str | None = None,
    rate: Decimal = DEFAULT_RATE,
    fixed_minor: int = DEFAULT_FIXED_MINOR,
    country: str = "CA",
    firm_region: str | None = None,
) -> FeeQuote:
    """What a client pays for ``amount_minor`` when the firm passes the card
    fee on, paying with a card of ``funding`` and billed in ``province``, to
    a firm located in ``country`` / ``firm_region``."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise ValueError(f"amount_minor must be a positive whole number of minor units, not {amount_minor!r}")
    currency = (currency or "").upper()
    if currency not in CURRENCY_DECIMALS:
        raise ValueError(f"unknown currency {currency!r}")
    funding = normalise_funding(funding)
    _check_rate(rate)
    if not isinstance(fixed_minor, int) or isinstance(fixed_minor, bool) or fixed_minor < 0:
        raise ValueError(f"fixed_minor must be a whole number of minor units >= 0, not {fixed_minor!r}")
    region = normalise_province(province)
    rule = rule_for(country)

    def free(text: str, code: str) -> FeeQuote:
        return FeeQuote(0, amount_minor, text, amount_minor, currency, funding, region, code)

    if not rule.country:
        return free("No card fee: card fees are not passed on to clients of firms outside Canada.",
                    "no-fee-country")
    home = normalise_province(firm_region)
    if home and home in rule.exempt_regions:
        return free(f"No card fee: firms in {rule.region_name(home)} do not charge one.", "no-fee-firm-region")
    if region and region in rule.exempt_regions:
        return free(f"No card fee: card fees are not charged to clients billed in {rule.region_name(region)}.",
                    "no-fee-region")
    if funding not in rule.fee_on:
        if funding == "unknown":
            return free("No card fee on this payment method.", "no-fee-funding")
        return free(f"No card fee on {_FUNDING_NAMES[funding]}s in {rule.name}.", "no-fee-funding")

    fee = rate_fee(amount_minor, rate, fixed_minor)
    what = f"the {_FUNDING_NAMES[funding]} processing fee ({_rate_text(rate, fixed_minor, currency)})"
    code = f"{funding}-rate"
    text = f"Card fee {format_display(fee, currency)}: {what}."
    if rule.cap_rate is not None:
        cap = cap_minor(amount_minor, rule.cap_rate)
        if fee > cap:
            fee = cap
            code = f"{funding}-capped"
            text = (f"Card fee {format_display(fee, currency)}: {what}, "
                    f"capped at {_percent(rule.cap_rate)} of the amount in {rule.name}.")
    if fee == 0:
        return free(f"No card fee: the {_FUNDING_NAMES[funding]} fee on so small an amount rounds to nothing.",
                    "no-fee-small")
    return FeeQuote(fee, amount_minor + fee, text, amount_minor, currency, funding, region, code)


def not_passed_on(amount_minor: int, currency: str, funding: str = "unknown",
                  province: str | None = None) -> FeeQuote:
    """The quote when the firm pays the card fee itself (no ``+fee``)."""
    return FeeQuote(amount_minor=amount_minor, currency=(currency or "").upper(), fee_minor=0,
                    total_minor=amount_minor, rule_applied_text="No card fee.",
                    funding=normalise_funding(funding), province=normalise_province(province),
                    rule="not-passed-on")


def quote_for(
    amount_minor: int,
    currency: str,
    *,
    pass_fee: bool,
    funding: str,
    province: str | None,
    rate: Decimal = DEFAULT_RATE,
    fixed_minor: int = DEFAULT_FIXED_MINOR,
    country: str = "CA",
    firm_region: str | None = None,
) -> FeeQuote:
    """``quote`` when the request passes the fee on, no fee otherwise."""
    if not pass_fee:
        return not_passed_on(amount_minor, currency, funding, province)
    return quote(amount_minor, currency, funding, province, rate, fixed_minor, country, firm_region)


def disclosure(
    amount_minor: int,
    currency: str,
    *,
    pass_fee: bool,
    province: str | None = None,
    rate: Decimal = DEFAULT_RATE,
    fixed_minor: int = DEFAULT_FIXED_MINOR,
    country: str = "CA",
    firm_region: str | None = None,
) -> list[tuple[str, FeeQuote]]:
    """What the pay page shows before the client pays: the total for each
    kind of card, e.g. [("Credit card", $102.40 ...), ("Debit or prepaid card",
    $100.00 ...)]; a single row when no card carries a fee."""
    quotes = {
        f: quote_for(amount_minor, currency, pass_fee=pass_fee, funding=f, province=province,
                     rate=rate, fixed_minor=fixed_minor, country=country, firm_region=firm_region)
        for f in ("credit", "debit", "prepaid", "unknown")
    }
    if all(q.fee_minor == 0 for q in quotes.values()):
        return [("Any payment method", quotes["unknown"])]
    rows: list[tuple[str, FeeQuote]] = [("Credit card", quotes["credit"])]
    if quotes["debit"].fee_minor == quotes["prepaid"].fee_minor == quotes["unknown"].fee_minor == 0:
        rows.append(("Debit or prepaid card, or Klarna", quotes["debit"]))
    else:
        rows += [("Debit card", quotes["debit"]), ("Prepaid card", quotes["prepaid"]),
                 ("Other payment methods", quotes["unknown"])]
    return rows


# -- reading what cards and clients tell us -----------------------------------


def normalise_funding(funding: str | None) -> str:
    """Stripe's ``card.funding`` ("credit", "debit", "prepaid", "unknown");
    anything else, or nothing, is "unknown" (which never carries a fee)."""
    value = (funding or "").strip().lower()
    return value if value in FUNDINGS else "unknown"


# ISO 3166-2:CA, Canada's provinces and territories (tests compare them with
# pycountry's): a code, as a firm's province is stored, is known without
# pycountry's data, which takes ~60 ms of CPU to load (in each worker, at
# the first request's card fee).
PROVINCE_CODES = frozenset({"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"})


@functools.cache
def _province_names() -> dict[str, str]:
    """Canada's provinces and territories by every name we accept, from
    pycountry's ISO 3166-2 data (English) and its French translation:
    "quebec", "quebec" (from "Québec"), "colombie britannique" -> "QC", "BC"."""
    french = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["fr"], fallback=True)
    names: dict[str, str] = {}
    for subdivision in pycountry.subdivisions.get(country_code="CA"):
        code = subdivision.code.split("-", 1)[1]
        for name in (subdivision.name, french.gettext(subdivision.name)):
            names[_plain(name)] = code
    # Names people write that ISO does not: the old abbreviation and the short form.
    names.update({"pq": "QC", "province de quebec": "QC", "newfoundland": "NL", "terre neuve": "NL"})
    return names


def _plain(text: str) -> str:
    """Lower case, no accents, words separated by one space ("Île-du-Prince-Édouard" -> "ile du prince edouard")."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return " ".join(text.replace("-", " ").replace(".", " ").replace("'", " ").split()).lower()


def normalise_province(province: str | None) -> str | None:
    """A province as its two-letter code ("QC"), from "QC", "qc", "CA-QC",
    "Québec", "Quebec"; other text is kept upper-cased; empty is None."""
    if province is None:
        return None
    text = _plain(province)
    if not text:
        return None
    if text.startswith("ca ") and len(text) == 5:
        text = text[3:]
    if text.upper() in PROVINCE_CODES:
        return text.upper()
    names = _province_names()  # loaded on first use: pycountry's data takes a moment to read
    return names.get(text, text.upper()[:40])


def province_name(code: str, lang: str = "en") -> str:
    """"Quebec" / "Québec" for "QC" (pycountry's names); the code when unknown."""
    subdivision = pycountry.subdivisions.get(code=f"CA-{code}")
    if subdivision is None:
        return code
    if lang == "fr":
        return gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["fr"],
                                   fallback=True).gettext(subdivision.name)
    return subdivision.name


# The first letter of a Canadian postal code names the province.
_POSTAL_PREFIX = {
    "A": "NL", "B": "NS", "C": "PE", "E": "NB", "G": "QC", "H": "QC", "J": "QC",
    "K": "ON", "L": "ON", "M": "ON", "N": "ON", "P": "ON", "R": "MB", "S": "SK",
    "T": "AB", "V": "BC", "X": "NT", "Y": "YT",
}


def province_from_postal_code(postal_code: str | None) -> str | None:
    """The province of a Canadian postal code ("H2X 1Y4" is QC), or None."""
    code = "".join((postal_code or "").split()).upper()
    if len(code) != 6 or not (code[0::2].isalpha() and code[1::2].isdigit()):
        return None
    return _POSTAL_PREFIX.get(code[0])


def billing_province(address: dict | None, declared: str | None = None) -> str | None:
    """Where the client is billed, from what they declared on the pay page
    and a billing address (Stripe's ``billing_details.address``). Any source
    that says an exempt province wins, so a doubt never adds a fee."""
    candidates = [normalise_province(declared)]
    if address and (address.get("country") or "CA").upper() == "CA":
        candidates.append(normalise_province(address.get("state")))
        candidates.append(province_from_postal_code(address.get("postal_code")))
    found = [c for c in candidates if c]
    for exempt in sorted(COUNTRY_RULES["CA"].exempt_regions):
        if exempt in found:
            return exempt
    return found[0] if found else None


# -- text -------------------------------------------------------------------


def _check_rate(rate: Decimal) -> None:
    if not isinstance(rate, Decimal):
        raise TypeError(f"the rate must be a Decimal (money never touches a float), not {type(rate).__name__}")
    if not Decimal(0) <= rate < Decimal(1):
        raise ValueError(f"the rate must be at least 0 and below 1, not {rate}")


def _percent(rate: Decimal) -> str:
    text = format((rate * 100).normalize(), "f")
    return f"{text}%"


def _rate_text(rate: Decimal, fixed_minor: int, currency: str) -> str:
    if not fixed_minor:
        return _percent(rate)
    decimals = CURRENCY_DECIMALS[currency]
    whole, frac = divmod(fixed_minor, 10**decimals)
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    fixed = f"{symbol}{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "")
    if not symbol:
        fixed += f" {currency}"
    return f"{_percent(rate)} + {fixed}"
