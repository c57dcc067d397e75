"""The client's languages: English and Canadian French.

Words is a string catalogue for one language plus how that language writes
amounts and dates. The client's pages (web/i18n.py) and the client's mail
(gateway/outbound/words.py) each keep their own catalogue and share this:
"$1,250.00 CAD" and "March 2, 2026" in English, "1 250,00 $ CAD" and
"2 mars 2026" in French, wherever the client reads them. Mail to staff is
written in English.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from babel import numbers as babel_numbers

from gateway.core.money import CURRENCY_DECIMALS, CURRENCY_SYMBOLS, format_decimal, format_display

LANGUAGES = ("en", "fr")
DEFAULT = "en"

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
}


def chosen(lang: str) -> str:
    """A stored language ("" when none was chosen) as one we write in."""
    return lang if lang in LANGUAGES else DEFAULT


class Words:
    """One language's strings (plurals: "key_one" for 1, "key_other" for
    the rest) and its way with amounts and dates."""

    def __init__(self, lang: str, strings: dict[str, str]) -> None:
        self.lang = lang
        self._strings = strings

    def __call__(self, key: str, **values: object) -> str:
        return self._strings[key].format(**values)

    def plural(self, key: str, count: int, **values: object) -> str:
        return self(f"{key}_{'one' if count == 1 else 'other'}", count=count, **values)

    def amount(self, minor: int, currency: str) -> str:
        """"$1,250.00 CAD" in English, "1 250,00 $ CAD" in French."""
        if self.lang == "en":
            return format_display(minor, currency)
        # The number as CLDR writes it in Canadian French (babel): grouping and
        # decimal comma from the locale's data, not from a hand-kept rule.
        decimals = CURRENCY_DECIMALS.get(currency, 2)
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
        number = babel_numbers.format_decimal(Decimal(format_decimal(minor, currency)), format=pattern,
                                              locale="fr_CA", decimal_quantization=False)
        symbol = CURRENCY_SYMBOLS.get(currency)
        return f"{number}\u00a0{symbol} {currency}" if symbol else f"{number}\u00a0{currency}"

    def amount_short(self, minor: int, currency: str) -> str:
        """The amount without its currency code ("$102.40", "102,40 $") when
        the context already says the currency (a firm's own); a currency
        without a sign keeps its code."""
        full = self.amount(minor, currency)
        if not CURRENCY_SYMBOLS.get(currency):
            return full
        return full.removesuffix(f" {currency}")

    def date(self, day: datetime.date) -> str:
        month = MONTHS[self.lang][day.month - 1]
        return f"{month} {day.day}, {day.year}" if self.lang == "en" else f"{day.day} {month} {day.year}"
