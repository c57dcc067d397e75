"""JSON: ISO 8601 times with offsets, amounts as decimal strings."""

import io
import json
from datetime import datetime

from gateway.reports.writers import json_writer

from tests.test_reports_fixtures import TORONTO, make_context, make_row


def _write(rows, **context) -> dict:
    out = io.BytesIO()
    written = json_writer.write(rows, out, make_context(**context))
    assert (written.extension, written.media_type) == ("json", "application/json")
    return json.loads(out.getvalue().decode("utf-8"))


def test_scope_and_requests():
    rows = [make_row(id=17, client="émile@client.example"),
            make_row(id=18, status="sent", paid=None, provider_fee_minor=None, application_fee_minor=0,
                     deposit_date=None, created=datetime(2026, 3, 20, 9, 0, tzinfo=TORONTO))]
    data = _write(rows, status="all")
    assert data["firm"] == "firm.example" and data["timezone"] == "America/Toronto" and data["status"] == "all"
    assert data["period"] == {"word": "2026-03", "first_day": "2026-03-01", "last_day": "2026-03-31",
                              "start": "2026-03-01T00:00:00-05:00", "end": "2026-04-01T00:00:00-04:00"}
    paid, sent = data["requests"]
    assert paid == {
        "id": 17, "invoice": "1042", "client": "émile@client.example", "staff": "staff@firm.example",
        "currency": "CAD", "amount": "1250.00", "fee": "31.25", "total": "1281.25", "provider_fee": "36.50",
        "platform_fee": "5.00", "net": "1239.75", "refunded": "0.00", "status": "paid", "created_at": "2026-03-02T09:15:00-05:00",
        "viewed_at": "2026-03-02T11:00:00-05:00", "paid_at": "2026-03-03T16:45:30-05:00",
        "deposit_date": "2026-03-05", "provider_ref": "pi_3Nx",
        "deposit_currency": None, "exchange_rate": None, "net_deposited": None,
        "documents_removed_at": None,
    }
    # After the spring change the offset is EDT's; unknowns are null.
    assert sent["created_at"] == "2026-03-20T09:00:00-04:00"
    assert sent["provider_fee"] is None and sent["net"] is None and sent["paid_at"] is None
    assert sent["amount"] == "1250.00" and sent["fee"] is None and sent["total"] is None


def test_amounts_are_strings_never_floats():
    [request] = _write([make_row(amount_minor=29, fee_minor=0, currency="USD")])["requests"]
    assert request["amount"] == "0.29" and isinstance(request["amount"], str)


def test_text_is_escaped_and_empty_reports_are_valid():
    [request] = _write([make_row(invoice='"}], "x": [')])["requests"]
    assert request["invoice"] == '"}], "x": ['
    assert _write([])["requests"] == []
