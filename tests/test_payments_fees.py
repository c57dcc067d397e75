"""The card-fee policy: a table of exact cents."""

from __future__ import annotations

from decimal import Decimal

import pycountry
import pytest

from gateway.payments import fees
from gateway.payments.fees import quote

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

RATE, FIXED = Decimal("0.029"), 50

# (amount_minor, currency, funding, province, rate, fixed, country) -> (fee, total, rule)
TABLE = [
    # The product's example: a Canadian firm's $100.00 +fee request.
    ((10000, "CAD", "credit", None, RATE, FIXED, "CA"), (240, 10240, "credit-capped")),
    ((10000, "CAD", "debit", None, RATE, FIXED, "CA"), (0, 10000, "no-fee-funding")),
    ((10000, "CAD", "prepaid", None, RATE, FIXED, "CA"), (0, 10000, "no-fee-funding")),
    ((10000, "CAD", "unknown", None, RATE, FIXED, "CA"), (0, 10000, "no-fee-funding")),
    ((10000, "CAD", "credit", "QC", RATE, FIXED, "CA"), (0, 10000, "no-fee-region")),
    ((10000, "CAD", "credit", "Québec", RATE, FIXED, "CA"), (0, 10000, "no-fee-region")),
    ((10000, "CAD", "credit", "ON", RATE, FIXED, "CA"), (240, 10240, "credit-capped")),
    # The cap is 2.4% of the amount, rounded down to the cent.
    ((125000, "CAD", "credit", None, RATE, FIXED, "CA"), (3000, 128000, "credit-capped")),
    ((12345, "CAD", "credit", None, RATE, FIXED, "CA"), (296, 12641, "credit-capped")),  # 296.28 -> 296
    ((99995, "CAD", "credit", None, RATE, FIXED, "CA"), (2399, 102394, "credit-capped")),  # 2399.88 -> 2399
    # Small amounts.
    ((100, "CAD", "credit", None, RATE, FIXED, "CA"), (2, 102, "credit-capped")),  # rate 52, cap 2.4 -> 2
    ((41, "CAD", "credit", None, RATE, FIXED, "CA"), (0, 41, "no-fee-small")),  # cap 0.984 -> 0
    ((42, "CAD", "credit", None, RATE, FIXED, "CA"), (1, 43, "credit-capped")),  # cap 1.008 -> 1
    ((1, "CAD", "credit", None, RATE, FIXED, "CA"), (0, 1, "no-fee-small")),
    # A lower firm rate: its rate on the amount, never on the fee (no gross-up), rounded down.
    ((10000, "CAD", "credit", None, Decimal("0.015"), 10, "CA"), (160, 10160, "credit-rate")),
    ((100000, "CAD", "credit", None, Decimal("0.01"), 0, "CA"), (1000, 101000, "credit-rate")),
    ((10000, "CAD", "credit", None, Decimal("0.02"), 0, "CA"), (200, 10200, "credit-rate")),  # was $2.05 (fee on fee)
    ((12345, "CAD", "credit", None, Decimal("0.0199"), 0, "CA"), (245, 12590, "credit-rate")),  # 245.67 -> 245
    ((5000, "CAD", "credit", None, Decimal("0"), 0, "CA"), (0, 5000, "no-fee-small")),
    # JPY has no minor unit: rounding is to the yen.
    ((10000, "JPY", "credit", None, RATE, FIXED, "CA"), (240, 10240, "credit-capped")),
    ((500, "JPY", "credit", None, RATE, FIXED, "CA"), (12, 512, "credit-capped")),
    ((10000, "JPY", "credit", None, Decimal("0.015"), 0, "CA"), (150, 10150, "credit-rate")),
    ((10000, "JPY", "debit", None, RATE, FIXED, "CA"), (0, 10000, "no-fee-funding")),
    # No rule on file for the country: no fee at all.
    ((10000, "USD", "credit", None, RATE, FIXED, "US"), (0, 10000, "no-fee-country")),
    ((10000, "EUR", "credit", None, RATE, FIXED, "FR"), (0, 10000, "no-fee-country")),
]


@pytest.mark.parametrize(("args", "expected"), TABLE, ids=[f"{a[0]}-{a[1]}-{a[2]}-{a[3]}-{a[4]}+{a[5]}-{a[6]}"
                                                          for a, _ in TABLE])
def test_fee_table(args, expected):
    q = quote(*args)
    assert (q.fee_minor, q.total_minor, q.rule) == expected
    assert q.total_minor == args[0] + q.fee_minor


def test_the_fee_never_exceeds_the_firms_rate_on_the_amount_nor_the_cap():
    for rate, fixed in ((RATE, FIXED), (Decimal("0.02"), 0), (Decimal("0.015"), 30), (Decimal("0.05"), 0)):
        for amount in (1, 99, 100, 4321, 10000, 123457, 9999999):
            fee = quote(amount, "CAD", "credit", rate=rate, fixed_minor=fixed).fee_minor
            assert fee <= Decimal(amount) * rate + fixed  # the firm's cost on the amount: no fee on the fee
            assert fee <= Decimal(amount) * Decimal("0.024")  # Canada's cap


def test_a_firm_in_quebec_adds_no_fee_for_any_client():
    for client in (None, "ON", "QC", "BC"):
        q = quote(10000, "CAD", "credit", client, firm_region="QC")
        assert (q.fee_minor, q.rule) == (0, "no-fee-firm-region")
    assert quote(10000, "CAD", "credit", "ON", firm_region="ON").fee_minor == 240
    assert quote(10000, "CAD", "credit", "QC", firm_region="ON").rule == "no-fee-region"
    assert [label for label, _ in fees.disclosure(10000, "CAD", pass_fee=True, firm_region="Québec")] == [
        "Any payment method"]


def test_the_rule_text_is_there_to_disclose():
    assert quote(10000, "CAD", "credit").rule_applied_text == (
        "Card fee $2.40 CAD: the credit card processing fee (2.9% + $0.50), capped at 2.4% of the amount in Canada.")
    assert quote(10000, "CAD", "debit").rule_applied_text == "No card fee on debit cards in Canada."
    assert quote(10000, "CAD", "credit", "QC").rule_applied_text == (
        "No card fee: card fees are not charged to clients billed in Quebec.")


def test_disclosure_before_paying():
    rows = fees.disclosure(10000, "CAD", pass_fee=True)
    assert [(label, q.total_minor) for label, q in rows] == [("Credit card", 10240),
                                                             ("Debit or prepaid card, or Klarna", 10000)]
    assert [(label, q.total_minor) for label, q in fees.disclosure(10000, "CAD", pass_fee=False)] == [
        ("Any payment method", 10000)]
    assert [(label, q.total_minor) for label, q in fees.disclosure(10000, "CAD", pass_fee=True, province="QC")] == [
        ("Any payment method", 10000)]


def test_money_is_never_a_float():
    with pytest.raises(TypeError):
        quote(10000, "CAD", "credit", rate=0.029)
    with pytest.raises(ValueError):
        quote(100.0, "CAD", "credit")
    with pytest.raises(ValueError):
        quote(0, "CAD", "credit")
    with pytest.raises(ValueError):
        quote(100, "XXX", "credit")
    with pytest.raises(ValueError):
        quote(100, "CAD", "credit", rate=Decimal("1"))


@pytest.mark.parametrize(("text", "code"), [
    ("QC", "QC"), ("qc", "QC"), ("CA-QC", "QC"), ("Québec", "QC"), ("quebec", "QC"), ("PQ", "QC"),
    ("Ontario", "ON"), ("british columbia", "BC"), ("", None), (None, None),
])
def test_provinces(text, code):
    assert fees.normalise_province(text) == code


def test_the_province_codes_known_without_pycountry_are_its_codes_for_canada():
    assert fees.PROVINCE_CODES == {s.code.removeprefix("CA-") for s in pycountry.subdivisions.get(country_code="CA")}


def test_billing_province_from_the_address_and_a_doubt_never_adds_a_fee():
    assert fees.province_from_postal_code("H2X 1Y4") == "QC"
    assert fees.province_from_postal_code("M5V2T6") == "ON"
    assert fees.province_from_postal_code("90210") is None
    assert fees.billing_province({"country": "CA", "postal_code": "H3B 2Y5", "state": None}) == "QC"
    assert fees.billing_province({"country": "CA", "postal_code": "M5V 2T6"}, "QC") == "QC"
    assert fees.billing_province({"country": "CA", "postal_code": "H3B 2Y5"}, "ON") == "QC"
    assert fees.billing_province({"country": "US", "postal_code": "H3B 2Y5", "state": "NY"}) is None
    assert fees.billing_province(None, "on") == "ON"


def test_funding_types():
    assert [fees.normalise_funding(f) for f in ("credit", "DEBIT", "prepaid", "unknown", "", None, "charge")] == [
        "credit", "debit", "prepaid", "unknown", "unknown", "unknown", "unknown"]
