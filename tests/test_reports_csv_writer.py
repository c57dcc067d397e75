"""CSV: RFC 4180, UTF-8 with a BOM, parsed back with the csv module."""

import csv
from decimal import Decimal
import io

from gateway.reports.writers import csv_writer
from gateway.reports.writers.table import COLUMNS

from tests.test_reports_fixtures import make_context, make_row


def _write(rows) -> bytes:
    out = io.BytesIO()
    written = csv_writer.write(rows, out, make_context())
    assert (written.extension, written.media_type) == ("csv", "text/csv")
    assert not out.closed
    return out.getvalue()


def _parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_every_column_in_order_with_exact_values():
    row = make_row(id=17, client="Émile Ça <emile@client.example>", invoice='INV "7", part 2')
    header, line = _parse(_write([row]))
    assert header[:5] == ["Request ID", "Invoice", "Client", "Staff member", "Currency"]
    assert header[5:12] == ["Amount (in Currency)", "Card fee (in Currency)", "Total charged (in Currency)",
                            "Provider fee (in Currency)", "Platform fee (in Currency)", "Net (in Currency)",
                            "Refunded (in Currency)"]
    assert header[13:16] == ["Created (America/Toronto)", "Viewed (America/Toronto)", "Paid (America/Toronto)"]
    assert header[18:] == ["Deposit currency", "Exchange rate", "Net deposited (in Deposit currency)",
                          "Documents removed (America/Toronto)"]
    assert len(header) == len(COLUMNS) == 22
    assert line == [
        "17", 'INV "7", part 2', "Émile Ça <emile@client.example>", "staff@firm.example", "CAD",
        "1250.00", "31.25", "1281.25", "36.50", "5.00", "1239.75", "0.00", "paid",
        "2026-03-02 09:15:00", "2026-03-02 11:00:00", "2026-03-03 16:45:30", "2026-03-05", "pi_3Nx", "", "", "", "",
    ]
    # The row reconciles: total - provider fee - platform fee = net.
    assert Decimal(line[7]) - Decimal(line[8]) - Decimal(line[9]) == Decimal(line[10])


def test_rfc_4180_line_ends_and_quoting():
    data = _write([make_row(invoice="a,b", client='say "hi"', staff="line\nbreak")])
    text = data.decode("utf-8-sig")
    assert text.count("\r\n") == 2 and text.endswith("\r\n")
    assert '"a,b"' in text and '"say ""hi"""' in text and '"line\nbreak"' in text


def test_unknown_values_are_empty_and_jpy_has_no_decimals():
    row = make_row(currency="JPY", amount_minor=5000, fee_minor=0, provider_fee_minor=None, application_fee_minor=0,
                   status="sent", paid=None, viewed=None, deposit_date=None, provider_ref="")
    _, line = _parse(_write([row]))
    # Never charged: no card fee, no total, no fees, no net (a declined request's 19.99 was shown as charged).
    assert line[5:12] == ["5000", "", "", "", "", "", ""]
    assert line[14:18] == ["", "", "", ""]


def test_formula_injection_is_neutralised():
    attacks = ['=HYPERLINK("http://evil.example","click")', "+1", "-2", "@x", "\t=1+1", "\r=1"]
    rows = [make_row(invoice=attack, client=attack, staff=attack, provider_ref=attack) for attack in attacks]
    _, *lines = _parse(_write(rows))
    for attack, line in zip(attacks, lines):
        for cell in (line[1], line[2], line[3], line[17]):
            assert cell == "'" + attack
    # Our own numbers are left alone, negative or not.
    assert lines[0][5] == "1250.00"


def test_an_empty_report_has_the_header_only():
    assert len(_parse(_write([]))) == 1
