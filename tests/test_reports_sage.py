"""Sage 50 Canadian general journal import, read back by a small reader
that checks every entry's shape, field lengths and balance to the cent."""

import csv
import io
import re
from decimal import Decimal

from gateway.reports.writers import sage

from tests.test_reports_fixtures import make_context, make_row

_DATE = re.compile(r"\d{2}-\d{2}-\d{2}")
_AMOUNT = re.compile(r"-?\d+\.\d{2}")


def read_sage(data: bytes) -> list[dict]:
    """Entries: {"date", "source", "comment", "lines": [(account, Decimal)]}; each must balance."""
    text = data.decode("cp1252")
    assert "\n" not in text.replace("\r\n", "")
    entries = []
    for raw in text.split("\r\n")[:-1]:
        if raw.startswith(tuple("0123456789")) and _DATE.match(raw) and raw[8:9] == ",":
            day, source, comment = next(csv.reader([raw]))
            assert raw == f'{day},"{source}","{comment}"'  # quoted exactly as Sage wants
            assert len(source) <= 13 and len(comment) <= 39
            entries.append({"date": day, "source": source, "comment": comment, "lines": []})
        else:
            account, amount = raw.split(",")
            assert _AMOUNT.fullmatch(amount), raw  # a period and two decimals
            entries[-1]["lines"].append((account, Decimal(amount)))
    for entry in entries:
        assert len(entry["lines"]) >= 2
        assert sum(amount for _, amount in entry["lines"]) == 0, entry
    return entries


def _write(rows, **context):
    out = io.BytesIO()
    written = sage.write(rows, out, make_context(**context))
    return written, read_sage(out.getvalue())


def test_each_paid_request_is_a_balanced_entry():
    rows = [make_row(id=17), make_row(id=18, fee_minor=0, provider_fee_minor=None, application_fee_minor=0)]
    written, entries = _write(rows)
    assert written.extension == "txt" and written.notes[0].startswith("Accounts used: payments clearing 1090")
    first = entries[0]
    assert (first["date"], first["source"]) == ("03-03-26", "1042")
    assert first["comment"] == "CT17 jane@client.example"
    assert first["lines"] == [("1090", Decimal("1239.75")), ("5700", Decimal("41.50")), ("1250", Decimal("-1250.00")),
                              ("5700", Decimal("-31.25"))]
    assert entries[1]["lines"] == [("1090", Decimal("1250.00")), ("1250", Decimal("-1250.00"))]


def test_fields_stay_within_sages_lengths_and_quotes():
    row = make_row(id=123456, invoice="INVOICE-2026-000123", client='"Quoted" ' + "x" * 80 + "@client.example")
    _, [entry] = _write([row])
    assert entry["source"] == "CT123456"
    assert len(entry["comment"]) == 39 and '"' not in entry["comment"]


def test_account_numbers_are_a_firm_setting():
    _, [entry] = _write([make_row()], ledger_accounts={"sage": {"clearing": "1065", "receivable": "2150"}})
    assert [account for account, _ in entry["lines"]] == ["1065", "5700", "2150", "5700"]


def test_a_firm_in_yen_still_writes_two_decimals():
    row = make_row(currency="JPY", amount_minor=5000, fee_minor=0, provider_fee_minor=180, application_fee_minor=0)
    _, [entry] = _write([row], currency="JPY")
    assert entry["lines"] == [("1090", Decimal("4820.00")), ("5700", Decimal("180.00")), ("1250", Decimal("-5000.00"))]


def test_other_currencies_are_left_out():
    written, entries = _write([make_row(currency="USD"), make_row()])
    assert len(entries) == 1 and "1 in USD" in written.notes[0]
