"""Money: text to integer minor units and back, with no float anywhere."""

import pytest

from gateway.core.money import (
    CURRENCY_DECIMALS,
    MoneyError,
    format_decimal,
    format_display,
    to_minor,
)

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1250", "CAD", 125000),
        ("1250.00", "CAD", 125000),
        ("1,250.00", "CAD", 125000),
        ("1,250", "CAD", 125000),
        ("$1,250.00", "CAD", 125000),
        (" 99.95 ", "USD", 9995),
        ("0.29", "USD", 29),  # 0.29 * 100 is 28.999999999999996 as a float
        ("0.5", "CAD", 50),
        ("1,234,567.8", "SEK", 123456780),
        ("1000", "JPY", 1000),
        ("¥1,000", "JPY", 1000),
        ("€5", "EUR", 500),
        ("£12.30", "GBP", 1230),
        ("5000", "KRW", 5000),
    ],
)
def test_to_minor_reads_amounts(text, currency, minor):
    result = to_minor(text, currency)
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    ("text", "currency", "phrase"),
    [
        ("12.345", "CAD", "at most 2 decimals"),
        ("10.5", "JPY", "no decimals"),
        ("0", "CAD", "more than zero"),
        ("0.00", "CAD", "more than zero"),
        ("-5", "CAD", "more than zero"),
        ("-$5", "CAD", "more than zero"),
        ("$-5", "CAD", "more than zero"),
        ("$1,00.00", "CAD", "every 3 digits"),
        ("1,2345", "CAD", "every 3 digits"),
        ("1234,567", "CAD", "every 3 digits"),
        ("", "CAD", "empty"),
        ("   ", "CAD", "empty"),
        ("1.2.3", "CAD", "not an amount"),
        ("NaN", "CAD", "not an amount"),
        ("Infinity", "CAD", "not an amount"),
        ("1e3", "CAD", "not an amount"),
        (".5", "CAD", "not an amount"),
        ("1 250", "CAD", "not an amount"),
        ("1" * 100, "CAD", "too long"),
        ("9" * 22, "CAD", "too large"),
        ("€5", "CAD", "not the sign of CAD"),
        ("5", "XYZ", "not a currency"),
    ],
)
def test_to_minor_refuses_with_a_reason(text, currency, phrase):
    with pytest.raises(MoneyError, match=phrase):
        to_minor(text, currency)


def test_money_error_is_a_value_error():
    assert issubclass(MoneyError, ValueError)


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (125000, "CAD", "1250.00"),
        (5, "USD", "0.05"),
        (1250, "JPY", "1250"),
        (-1250, "CAD", "-12.50"),
        (0, "EUR", "0.00"),
    ],
)
def test_format_decimal(minor, currency, text):
    assert format_decimal(minor, currency) == text


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (125000, "CAD", "$1,250.00 CAD"),
        (125000, "USD", "$1,250.00 USD"),
        (500, "EUR", "€5.00 EUR"),
        (99, "GBP", "£0.99 GBP"),
        (1250000, "JPY", "¥1,250,000 JPY"),
        (123456789, "SEK", "1,234,567.89 SEK"),
        (-500, "CAD", "-$5.00 CAD"),
    ],
)
def test_format_display(minor, currency, text):
    assert format_display(minor, currency) == text


@pytest.mark.parametrize("currency", sorted(CURRENCY_DECIMALS))
def test_every_currency_round_trips(currency):
    decimals = CURRENCY_DECIMALS[currency]
    text = "1234." + "5" * decimals if decimals else "1234"
    assert format_decimal(to_minor(text, currency), currency) == text


def test_currency_table_covers_the_common_codes():
    assert len(CURRENCY_DECIMALS) >= 20
    assert CURRENCY_DECIMALS["JPY"] == CURRENCY_DECIMALS["KRW"] == 0
    assert CURRENCY_DECIMALS["CAD"] == CURRENCY_DECIMALS["USD"] == 2
