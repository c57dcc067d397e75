"""A paid request as a balanced journal entry, and the accounts it posts to."""

import pytest

from gateway.reports import ledger

from tests.test_reports_fixtures import make_row

IIF = ledger.accounts({}, "iif")


def test_defaults_and_firm_settings():
    assert IIF == {"clearing": "Undeposited Funds", "fees": "Merchant Fees", "receivable": "Accounts Receivable",
                   "surcharge": "Merchant Fees"}
    assert ledger.accounts(None, "sage")["receivable"] == "1250"  # never Sage's linked A/R (1200)
    chosen = ledger.accounts({"iif": {"clearing": "Stripe Clearing", "fees": ""}, "sage": {"fees": 5790}}, "iif")
    assert chosen["clearing"] == "Stripe Clearing" and chosen["fees"] == "Merchant Fees"
    assert ledger.accounts({"sage": {"fees": 5790}}, "sage")["fees"] == "5790"


def test_an_entry_with_fees_and_a_surcharge():
    row = make_row()  # 1,250.00 + 31.25 surcharge; provider 36.50, platform 5.00
    assert ledger.entry(row, IIF) == [
        ("Undeposited Funds", 123975), ("Merchant Fees", 4150), ("Accounts Receivable", -125000),
        ("Merchant Fees", -3125),
    ]


def test_zero_lines_are_left_out():
    row = make_row(fee_minor=0, provider_fee_minor=None, application_fee_minor=0)
    assert ledger.entry(row, IIF) == [("Undeposited Funds", 125000), ("Accounts Receivable", -125000)]


@pytest.mark.parametrize("amount", [1, 99, 12345, 999_999_99])
@pytest.mark.parametrize("fee", [0, 1, 333])
@pytest.mark.parametrize("provider_fee", [None, 0, 7, 2917])
def test_every_entry_balances_to_the_cent(amount, fee, provider_fee):
    row = make_row(amount_minor=amount, fee_minor=fee, provider_fee_minor=provider_fee, application_fee_minor=3)
    assert sum(minor for _, minor in ledger.entry(row, IIF)) == 0


def test_a_total_other_than_amount_plus_fee_still_balances():
    # The receivable takes what was charged less the surcharge, whatever the amount column says.
    row = make_row(amount_minor=1000, fee_minor=100, total_minor=1200, provider_fee_minor=None, application_fee_minor=0)
    assert ledger.entry(row, IIF) == [("Undeposited Funds", 1200), ("Accounts Receivable", -1100),
                                      ("Merchant Fees", -100)]


def test_reference_is_the_invoice_when_it_fits():
    assert ledger.reference(make_row(invoice="1042"), 11) == "1042"
    assert ledger.reference(make_row(id=17, invoice="A-VERY-LONG-INVOICE-NUMBER"), 11) == "CT17"
    assert ledger.reference(make_row(id=17, invoice=""), 11) == "CT17"
