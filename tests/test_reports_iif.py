"""QuickBooks Desktop IIF, read back by a small reader that checks that
every entry balances to the cent."""

import io
from decimal import Decimal

from gateway.reports.writers import iif

from tests.test_reports_fixtures import make_context, make_row

FIELDS = ["TRNSID", "TRNSTYPE", "DATE", "ACCNT", "NAME", "AMOUNT", "DOCNUM", "MEMO"]


def read_iif(data: bytes) -> list[list[dict]]:
    """Entries as lists of lines (TRNS first), each line a dict by the header's names.
    Fails on anything QuickBooks would refuse: a line outside an entry, an unbalanced entry."""
    text = data.decode("cp1252")
    assert "\n" not in text.replace("\r\n", "")  # CRLF only
    lines = text.split("\r\n")
    assert lines.pop() == ""
    assert lines[0].split("\t") == ["!TRNS"] + FIELDS
    assert lines[1].split("\t") == ["!SPL", "SPLID"] + FIELDS[1:]
    assert lines[2] == "!ENDTRNS"
    entries, current = [], None
    for line in lines[3:]:
        kind, *values = line.split("\t")
        if kind == "TRNS":
            assert current is None
            current = [dict(zip(FIELDS, values, strict=True))]
        elif kind == "SPL":
            assert current is not None
            current.append(dict(zip(FIELDS, values, strict=True)))
        else:
            assert kind == "ENDTRNS" and current is not None and len(current) >= 2
            assert sum(Decimal(line["AMOUNT"]) for line in current) == 0, current
            assert all(Decimal(line["AMOUNT"]) == Decimal(line["AMOUNT"]).quantize(Decimal("0.01")) for line in current)
            entries.append(current)
            current = None
    assert current is None
    return entries


def _write(rows, **context):
    out = io.BytesIO()
    written = iif.write(rows, out, make_context(**context))
    return written, read_iif(out.getvalue())


def test_each_paid_request_is_a_balanced_general_journal_entry():
    rows = [make_row(id=17), make_row(id=18, invoice="", fee_minor=0, provider_fee_minor=None, application_fee_minor=0),
            make_row(id=19, amount_minor=1, fee_minor=0, provider_fee_minor=0, application_fee_minor=0)]
    written, entries = _write(rows)
    assert written.extension == "iif" and [n[:14] for n in written.notes] == ["Accounts used:", "3 payments wen"]
    assert len(entries) == 3
    first = entries[0]
    assert [(line["ACCNT"], line["AMOUNT"]) for line in first] == [
        ("Undeposited Funds", "1239.75"), ("Merchant Fees", "41.50"), ("Accounts Receivable", "-1250.00"),
        ("Merchant Fees", "-31.25")]
    assert {line["TRNSTYPE"] for line in first} == {"GENERAL JOURNAL"}
    assert {line["DATE"] for line in first} == {"03/03/2026"}
    assert {line["DOCNUM"] for line in first} == {"1042"}
    assert first[2]["NAME"] == "jane@client.example" and first[0]["NAME"] == ""
    assert "request 17" in first[0]["MEMO"]
    assert {line["DOCNUM"] for line in entries[1]} == {"CT18"}
    assert [line["AMOUNT"] for line in entries[2]] == ["0.01", "-0.01"]


def test_account_names_are_a_firm_setting():
    accounts = {"iif": {"clearing": "Stripe Clearing", "fees": "Bank Service Charges", "surcharge": "Surcharge Income"}}
    _, [entry] = _write([make_row()], ledger_accounts=accounts)
    assert [line["ACCNT"] for line in entry] == [
        "Stripe Clearing", "Bank Service Charges", "Accounts Receivable", "Surcharge Income"]


def test_text_cannot_break_the_tab_format():
    row = make_row(invoice="A\tB", client='x\t"y"\r\n@client.example' + "z" * 60)
    _, [entry] = _write([row])
    assert entry[0]["DOCNUM"] == "A B"
    assert len(entry[2]["NAME"]) == 41 and '"' not in entry[2]["NAME"]


def test_other_currencies_are_left_out_and_refunds_noted():
    rows = [make_row(), make_row(currency="USD"), make_row(currency="USD"), make_row(status="refunded")]
    written, entries = _write(rows)
    assert len(entries) == 2
    assert any("2 in USD" in note for note in written.notes)
    assert any("1 payment was refunded" in note for note in written.notes)


def test_an_empty_report_has_the_headers_only():
    assert _write([])[1] == []


def test_client_and_invoice_text_that_starts_a_formula_is_neutralised():
    for text in ("=HYPERLINK(\"http://evil.example\")@x.example", "+1@x.example", "-2@x.example", "@SUM(A1)@x.example",
                 " =padded@x.example"):
        _written, [entry] = _write([make_row(client=text, invoice="=1+1")])
        names = [line["NAME"] for line in entry if line["NAME"]]
        assert names and all(name.startswith("'") for name in names), names
        for line in entry:
            assert "'=1+1" in line["DOCNUM"] or line["DOCNUM"].startswith("'")
            assert ", '" in line["MEMO"] and not any(f", {c}" in line["MEMO"] for c in "=+-@")
