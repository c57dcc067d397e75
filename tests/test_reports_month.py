"""A month as a bookkeeper sees it: paid, declined, refunded, unpaid and
foreign-currency requests. The file's totals are the summary's, every row
reconciles, and nothing that was never charged shows an amount charged."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from gateway.core.models import PaymentRequest, RequestStatus
from gateway.reports import customers
from gateway.reports.export import period_of, run_report
from gateway.reports.grammar import parse_report_args
from tests import vendor_rules
from tests.test_reports_fixtures import NOW, TORONTO, database, make_firm, make_request  # noqa: F401

MARCH = datetime(2026, 3, 10, 10, tzinfo=TORONTO)


async def _month(firm) -> None:
    # Paid with the card fee; the provider kept 3.36, the platform 1.00.
    await make_request(firm, created_at=MARCH, paid_at=MARCH, amount_minor=10000, fee_minor=240,
                       provider_fee_minor=336, application_fee_minor=100, invoice="A1")
    # Declined: the card was refused, so nothing was charged (its total was once shown as 19.99).
    await make_request(firm, created_at=MARCH, status=RequestStatus.FAILED, amount_minor=1999,
                       provider_fee_minor=None, invoice="A2")
    # Paid, then refunded in full.
    refunded = await make_request(firm, created_at=MARCH, paid_at=MARCH, status=RequestStatus.REFUNDED,
                                  amount_minor=50000, provider_fee_minor=1480, invoice="A3")
    await PaymentRequest.filter(id=refunded.id).update(refunded_minor=50000)
    # Sent and not paid yet.
    await make_request(firm, created_at=MARCH, status=RequestStatus.SENT, amount_minor=250000,
                       provider_fee_minor=None, invoice="A4")
    # Paid in US dollars.
    await make_request(firm, created_at=MARCH, paid_at=MARCH, currency="USD", amount_minor=20000,
                       provider_fee_minor=610, invoice="A5")


async def _report(firm, fmt: str):
    spec = parse_report_args((fmt, "2026-03"))
    out = io.BytesIO()
    report = await run_report(firm, spec, period_of(firm, spec, NOW), out)
    return report, out.getvalue()


def _minor(text: str) -> int:
    return int(Decimal(text or "0").scaleb(2))


async def test_the_files_totals_are_the_summarys(database):  # noqa: F811
    firm = await make_firm()
    await _month(firm)

    report, data = await _report(firm, "xlsx")
    cad, usd = report.summary.by_currency["CAD"], report.summary.by_currency["USD"]
    assert (cad.count, cad.paid, cad.gross_minor, cad.net_minor, cad.refunded_minor) == (4, 2, 60240, 58324, 50000)
    sheet = load_workbook(io.BytesIO(data))["Payments"]
    totals = {row[4].value: row for row in sheet.iter_rows(min_row=2) if row[0].value == "Total received"}
    for currency, t in (("CAD", cad), ("USD", usd)):
        line = [int(Decimal(str(cell.value or 0)).scaleb(2)) for cell in totals[currency][5:12]]
        assert line == [t.amount_minor, t.card_fee_minor, t.gross_minor, t.provider_fee_minor,
                        t.platform_fee_minor, t.net_minor, t.refunded_minor]
    assert "CAD: 4 requests, 2 paid: gross $602.40 CAD" in report.text and "refunded $500.00 CAD" in report.text

    report, data = await _report(firm, "csv")
    header, *lines = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    by_invoice = {line[1]: line for line in lines}
    assert by_invoice["A2"][5:12] == ["19.99", "", "", "", "", "", ""]  # declined: nothing charged
    assert by_invoice["A4"][5:12] == ["2500.00", "", "", "", "", "", ""]
    for line in lines:
        if line[7]:  # money moved: the row reconciles
            assert _minor(line[7]) - _minor(line[8]) - _minor(line[9]) == _minor(line[10])
    # A spreadsheet's sums over the CAD rows are the summary's figures.
    cad_lines = [line for line in lines if line[4] == "CAD"]
    assert sum(_minor(line[7]) for line in cad_lines) == cad.gross_minor
    assert sum(_minor(line[10]) for line in cad_lines) == cad.net_minor
    assert sum(_minor(line[11]) for line in cad_lines) == cad.refunded_minor
    assert header[9] == "Platform fee (in Currency)"


async def test_the_months_iif_and_sage_files_pass_the_vendors_rules(database):  # noqa: F811
    firm = await make_firm()
    await _month(firm)
    report, data = await _report(firm, "sage")
    entries = vendor_rules.check_sage(data)
    assert len(entries) == 2  # the CAD payments; the USD one is left out and the summary says so
    assert "Accounts used: payments clearing 1090 (clearing)" in report.text and "invoices paid 1250" in report.text
    assert "clienttrack firm accounts firm.example sage ROLE=ACCOUNT" in report.text
    report, data = await _report(firm, "iif")
    assert len(vendor_rules.check_iif(data)) == 2


async def test_a_linked_receivables_account_is_refused_and_the_firm_is_warned(database):  # noqa: F811
    firm = await make_firm(ledger_accounts={"sage": {"receivable": "1200"}})
    await _month(firm)
    report, data = await _report(firm, "sage")
    with pytest.raises(vendor_rules.Refused, match="1200 .Accounts Receivable. is a linked account"):
        vendor_rules.check_sage(data)
    assert "Warning: 1200 (Accounts Receivable) is a linked account" in report.text


QB_CUSTOMERS_IIF = (
    "!CUST\tNAME\tREFNUM\tBADDR1\tEMAIL\tCONT1\r\n"
    "CUST\tSmith, Jane\t12\t1 Main St\tjane@client.example\tJane Smith\r\n"
    "CUST\tNorth Ltd.\t13\t\tap@north.example; boss@north.example\t\r\n"
).encode("cp1252")
QB_CUSTOMERS_CSV = "\ufeffCustomer,Company,Main Email,Main Phone\r\n\"Côté, Émile\",,emile@client.example,555\r\n"


async def test_iif_posts_each_payment_to_its_quickbooks_customer(database):  # noqa: F811
    firm = await make_firm()
    await make_request(firm, created_at=MARCH, paid_at=MARCH, client="jane@client.example", invoice="B1")
    await make_request(firm, created_at=MARCH, paid_at=MARCH, client="boss@north.example", invoice="B2")
    await make_request(firm, created_at=MARCH, paid_at=MARCH, client="emile@client.example", invoice="B3")
    directed = await make_request(firm, created_at=MARCH, paid_at=MARCH, client="jane@client.example",
                                  invoice="B4")
    await PaymentRequest.filter(id=directed.id).update(customer="Smith Holdings")  # customer="Smith Holdings"
    await make_request(firm, created_at=MARCH, paid_at=MARCH, client="new@client.example", invoice="B5")

    assert (await customers.import_list(firm, customers.read_customer_list(QB_CUSTOMERS_IIF))).added == 3
    assert (await customers.import_list(firm, customers.read_customer_list(QB_CUSTOMERS_CSV.encode()))).added == 1
    report, data = await _report(firm, "iif")
    transactions = vendor_rules.check_iif(data)
    names = {t[0]["DOCNUM"]: next(line["NAME"] for line in t if line["ACCNT"] == "Accounts Receivable")
             for t in transactions}
    assert names == {"B1": "Smith, Jane", "B2": "North Ltd.", "B3": "Côté, Émile", "B4": "Smith Holdings",
                     "B5": "new@client.example"}
    # The address as a last resort, flagged so the firm can fix it.
    assert "1 payment went to a customer named by the client's address" in report.text
    assert "clienttrack firm customers firm.example import FILE" in report.text


def test_a_customer_list_without_the_columns_is_refused():
    with pytest.raises(customers.CustomerListError, match="Customer or Name"):
        customers.read_customer_list(b"Client,Phone\r\nJane,555\r\n")


def test_a_usd_payment_to_a_cad_account_reports_its_fee_in_usd_and_its_deposit_in_cad():
    # Stripe's balance transaction is in the account's currency: 100.00 USD became 136.00 CAD at 1.36,
    # Stripe kept 4.59 CAD, 131.41 CAD reached the balance.
    from gateway.payments.stripe_objects import state_from_intent

    pi = {"id": "pi_fx", "object": "payment_intent", "status": "succeeded", "amount": 10000,
          "amount_received": 10000, "currency": "usd", "metadata": {"request_id": "7"},
          "latest_charge": {"id": "ch_fx", "status": "succeeded", "amount": 10000, "created": 1772722950,
                            "balance_transaction": {"currency": "cad", "exchange_rate": 1.36, "amount": 13600,
                                                    "fee": 459, "net": 13141,
                                                    "fee_details": [{"type": "stripe_fee", "amount": 459,
                                                                     "currency": "cad"}]}}}
    state = state_from_intent(pi, account="acct_x")
    # Was 459 "USD": a CAD fee labelled with the payment's currency.
    assert (state.currency, state.provider_fee_minor) == ("USD", 338)  # 4.59 / 1.36 = 3.375 -> 3.38 USD
    assert (state.settlement_currency, state.exchange_rate, state.settlement_net_minor) == ("CAD", "1.36", 13141)


async def test_the_report_says_which_currency_each_amount_is_in(database):  # noqa: F811
    firm = await make_firm()
    paid = await make_request(firm, created_at=MARCH, paid_at=MARCH, currency="USD", amount_minor=10000,
                              provider_fee_minor=338, invoice="F1")
    await PaymentRequest.filter(id=paid.id).update(settlement_currency="CAD", exchange_rate="1.36",
                                                   settlement_net_minor=13141)
    report, data = await _report(firm, "csv")
    header, line = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    row = dict(zip(header, line))
    assert row["Currency"] == "USD" and row["Provider fee (in Currency)"] == "3.38"
    assert row["Net (in Currency)"] == "96.62"  # 100.00 - 3.38: the row reconciles in USD
    assert (row["Deposit currency"], row["Exchange rate"], row["Net deposited (in Deposit currency)"]) == (
        "CAD", "1.36", "131.41")
