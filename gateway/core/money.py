"""Money as an integer of minor units beside an ISO 4217 currency code.

Amounts arrive as text people typed ("1,250.00") and leave as text: a plain
decimal string for JSON ("1250.00") or a display string for people
("$1,250.00 CAD"). In between they are ints, so nothing ever rounds. Text
becomes a number only through ``decimal.Decimal``; no float touches money.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact

# Decimals per ISO 4217. Currencies whose code is a common word (TRY, PHP,
# ALL) are left out: a code beside a number in a subject is read as a
# currency, and "2 try" must stay text.
CURRENCY_DECIMALS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2,
    "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "ILS": 2, "INR": 2, "JPY": 0,
    "KRW": 0, "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2, "SEK": 2, "SGD": 2,
    "THB": 2, "USD": 2, "ZAR": 2,
}

# The sign written before an amount; currencies without one show the code only.
CURRENCY_SYMBOLS: dict[str, str] = {
    "AUD": "$", "CAD": "$", "HKD": "$", "MXN": "$", "NZD": "$", "SGD": "$",
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥",
}

# Longer than any real amount ("999,999,999,999,999.99" is 22), and short
# enough that Decimal's 28-digit precision holds every digit exactly.
MAX_TEXT_LENGTH = 24
# Enough digits for any text that passes MAX_TEXT_LENGTH; should a digit
# ever be lost anyway, Inexact raises instead of rounding quietly.
_EXACT = Context(prec=MAX_TEXT_LENGTH, traps=[Inexact])
# What a database BIGINT column holds.
MAX_MINOR = 2**63 - 1

_NUMBER = re.compile(r"(?P<whole>\d+(?:,\d+)*)(?:\.(?P<fraction>\d+))?")
_EXAMPLE = "1250.00 or 1,250.00"


class MoneyError(ValueError):
    """An amount or currency is wrong; the message says how to write it."""


def to_minor(text: str, currency: str) -> int:
    """Read an amount typed by a person as minor units of ``currency``.

    Accepts "1250", "1250.00", "1,250", "1,250.00" and a leading sign that
    belongs to the currency ("$1,250.00" for CAD). Rejects zero and
    negatives, more decimals than the currency has, thousands separators
    not every 3 digits, and anything else that is not a plain number.
    """
    decimals = _decimals(currency)
    text = text.strip()
    if not text:
        raise MoneyError(f"The amount is empty; write it like {_EXAMPLE}.")
    if len(text) > MAX_TEXT_LENGTH:
        raise MoneyError(f"The amount is too long to be real; write it like {_EXAMPLE}.")
    number = _without_sign(text, currency)
    match = _NUMBER.fullmatch(number)
    if match is None:
        raise MoneyError(f"{text!r} is not an amount; write it like {_EXAMPLE}.")
    whole, fraction = match["whole"], match["fraction"] or ""
    _check_grouping(whole)
    if len(fraction) > decimals:
        raise MoneyError(_too_many_decimals(currency, decimals))
    value = Decimal(f"{whole.replace(',', '')}.{fraction or '0'}")
    minor = int(value.scaleb(decimals, context=_EXACT))
    if minor == 0:
        raise MoneyError("The amount must be more than zero.")
    if minor > MAX_MINOR:
        raise MoneyError("The amount is too large.")
    return minor


def format_decimal(minor: int, currency: str) -> str:
    """Minor units as a plain decimal string for machines: "1250.00", "1250" for JPY."""
    sign, whole, fraction = _parts(minor, currency)
    return f"{sign}{whole}{fraction}"


def format_display(minor: int, currency: str) -> str:
    """Minor units for people: "$1,250.00 CAD", "€5.00 EUR", "1,250.00 SEK"."""
    sign, whole, fraction = _parts(minor, currency)
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    return f"{sign}{symbol}{whole:,}{fraction} {currency}"


def _decimals(currency: str) -> int:
    try:
        return CURRENCY_DECIMALS[currency]
    except KeyError:
        raise MoneyError(f"{currency!r} is not a currency this gateway knows.") from None


def _without_sign(text: str, currency: str) -> str:
    """The number with its currency sign removed; a minus sign is refused."""
    unsigned = text.removeprefix("-")
    symbol = unsigned[:1]
    if symbol in CURRENCY_SYMBOLS.values():
        if CURRENCY_SYMBOLS.get(currency) != symbol:
            raise MoneyError(
                f"{symbol} is not the sign of {currency}; write the currency code "
                f"after the amount instead, like 1250.00 {_currency_of(symbol)}."
            )
        unsigned = unsigned[1:]
    # Both "-$5" and "$-5" are negative.
    if text.startswith("-") or unsigned.startswith("-"):
        raise MoneyError("The amount must be more than zero; write it without a minus sign.")
    return unsigned


def _currency_of(symbol: str) -> str:
    """The currency a sign most likely means, for an example in a message."""
    owners = [code for code, sign in CURRENCY_SYMBOLS.items() if sign == symbol]
    return owners[0] if len(owners) == 1 else "USD"


def _check_grouping(whole: str) -> None:
    first, *rest = whole.split(",")
    if rest and (len(first) > 3 or any(len(group) != 3 for group in rest)):
        raise MoneyError(
            "The thousands separators are misplaced: commas go every 3 digits, like 1,250.00."
        )


def _too_many_decimals(currency: str, decimals: int) -> str:
    if decimals == 0:
        return f"{currency} amounts have no decimals; write a whole number like 1250."
    return f"{currency} amounts have at most {decimals} decimals, like 1250.{'0' * decimals}."


def _parts(minor: int, currency: str) -> tuple[str, int, str]:
    """Sign, whole units and the ".fraction" text (empty for 0-decimal currencies)."""
    decimals = _decimals(currency)
    whole, fraction = divmod(abs(minor), 10**decimals)
    sign = "-" if minor < 0 else ""
    return sign, whole, f".{fraction:0{decimals}d}" if decimals else ""
