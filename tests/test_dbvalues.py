"""The request's rows (rows.Insert: the request, its files, its two mails,
its event) are converted for the database by gateway/core/dbvalues.py,
which passes a value of the field's own type on without the ORM's
to_db_value machinery: every value comes out as the ORM's own conversion
makes it, value and type, and what the ORM refuses it refuses the same
way (a text longer than its column, which SQLite itself would keep; an
unknown enum value; a null in a column that takes none)."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta, timezone

import pytest
from tortoise import connections
from tortoise.exceptions import ValidationError

from gateway.core import db, rows
from gateway.core.models import (
    Event, Firm, Level, OutboundMessage, OutboundStatus, PaymentRequest, RequestKind, SealedFile, Staff,
)
from tests.conftest import database_url

TORONTO = timezone(timedelta(hours=-5))
NOW = datetime(2026, 11, 27, 9, 0, 0, 123456, tzinfo=timezone.utc)


def _as_the_orm_converts_given(insert: rows.Insert, given: dict) -> list:
    """What rows.Insert.row did before dbvalues: each given value read as
    the instance reads it and converted by the field; the rest, defaults."""
    return [field.to_db_value(field.to_python_value(given[name]), insert.model) if name in given
            else field.to_db_value(default(), insert.model)
            for name, field, default in zip(insert.columns, insert.fields, insert._defaults)]


def _typed(values: list) -> list:
    return [(value, type(value), value.utcoffset() if isinstance(value, datetime) else None) for value in values]


GIVEN = [
    (SealedFile, {"request_id": 7, "reply_id": None, "position": 1, "is_body": False, "filename": "invoice.pdf",
                  "content_type": "application/pdf", "size": 102400, "file_salt": bytes(16), "chunk_count": 2,
                  "blob": "ab/cd", "upload_item": None}),
    # Values of other types than the field's: converted by the ORM as before.
    (SealedFile, {"request_id": "7", "position": True, "is_body": 1, "filename": "x", "content_type": "text/plain",
                  "size": 3.0, "file_salt": bytearray(16), "chunk_count": 1, "blob": "ab/ef", "upload_item": 2}),
    (OutboundMessage, {"kind": "client-request", "mail_from": "pay@gw.example", "rcpt_to": "c@client.example",
                       "subject": "Invoice", "sealed_message": b"sealed", "next_attempt_at": NOW,
                       "created_at": NOW.astimezone(TORONTO), "notify_on_failure": "", "request_id": None,
                       "status": "queued"}),
    (OutboundMessage, {"kind": "confirmation", "mail_from": "pay@gw.example", "rcpt_to": "s@firm.example",
                       "sealed_message": b"x", "next_attempt_at": NOW.isoformat(), "created_at": NOW,
                       "status": OutboundStatus.SENT, "lease_until": None}),
    (Event, {"at": NOW, "actor": "s@firm.example", "action": "request.created", "firm_id": 1, "request_id": 7,
             "detail": {"invoice": "1042", "amount": "$1,250.00", "attachments": 1}}),
    (Event, {"at": NOW, "actor": "s@firm.example", "action": "x", "firm_id": None, "detail": '{"as": "text"}'}),
    (Event, {"at": NOW, "actor": "s@firm.example", "action": "x", "detail": ["a", 1]}),
]


@pytest.mark.parametrize("model,given", GIVEN)
async def test_a_given_row_is_converted_as_the_orm_converts_it(tmp_path, model, given):
    async with db.opened(database_url(tmp_path)):
        insert = rows.insert(model, connections.get("default"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert _typed(insert.row(rows.New(model, given))) == _typed(_as_the_orm_converts_given(insert, given))


async def test_a_request_is_converted_as_the_orm_converts_it(tmp_path):
    async with db.opened(database_url(tmp_path)):
        firm = await Firm.create(domain="firm.example", name="Firm", created_at=NOW)
        staff = await Staff.create(firm=firm, email="s@firm.example", level=Level.SEND, created_at=NOW)
        for kind, expires in [(RequestKind.PAYMENT, NOW + timedelta(days=30)),
                              (RequestKind.MESSAGE, (NOW + timedelta(days=3)).astimezone(TORONTO))]:
            request = PaymentRequest(
                firm=firm, staff=staff, sender=staff.email, kind=kind, lang="fr", upload_items=["T4", "RL-1"],
                remind=False, invoice="1042", client_email="c@client.example", title="Taxes", amount_minor=125000,
                currency="CAD", pass_fee=True, customer="", hint="Dog", token_hash="ab" * 32,
                sealed_token=bytes(60), kdf={"alg": "argon2id", "m": 65536}, source_message_id="<m@firm.example>",
                created_at=NOW, expires_at=expires, wrapped_key=bytes(72))
            insert = rows.insert(PaymentRequest, connections.get("default"))
            assert _typed(insert.values(request)) == _typed(
                [field.to_db_value(getattr(request, name), request) for name, field in zip(insert.columns,
                                                                                         insert.fields)])


async def test_what_the_orm_refuses_is_refused(tmp_path):
    async with db.opened(database_url(tmp_path)):
        insert = rows.insert(Event, connections.get("default"))
        row = {"at": NOW, "actor": "s@firm.example", "action": "x", "detail": {}}
        with pytest.raises(ValidationError, match="actor"):
            insert.row(rows.New(Event, {**row, "actor": "a" * 255}))
        assert insert.row(rows.New(Event, {**row, "actor": "a" * 254}))[insert.columns.index("actor")] == "a" * 254
        with pytest.raises(ValueError, match="at is non nullable"):
            insert.row(rows.New(Event, {**row, "at": None}))
        outbound = rows.insert(OutboundMessage, connections.get("default"))
        with pytest.raises(ValueError):
            outbound.row(rows.New(OutboundMessage, {"kind": "k", "mail_from": "a@b.example", "rcpt_to": "c@d.example",
                                                    "next_attempt_at": NOW, "created_at": NOW, "status": "lost"}))
        firm = await Firm.create(domain="firm.example", name="Firm", created_at=NOW)
        request = PaymentRequest(firm=firm, sender="s@firm.example", client_email="c" * 250 + "@client.example",
                                 amount_minor=1, currency="CAD", token_hash="ab" * 32, kdf={}, wrapped_key=b"",
                                 source_message_id="<m>", created_at=NOW, expires_at=NOW)
        with pytest.raises(ValidationError, match="client_email"):
            rows.insert(PaymentRequest, connections.get("default")).values(request)


async def test_a_date_is_passed_on_as_the_orm_passes_it(tmp_path):
    async with db.opened(database_url(tmp_path)):
        insert = rows.insert(Firm, connections.get("default"))
        for notice in (date(2024, 1, 2), "2024-01-02", None):
            given = {"domain": "firm.example", "name": "Firm", "created_at": NOW, "surcharge_notice_date": notice}
            assert _typed(insert.row(rows.New(Firm, given))) == _typed(_as_the_orm_converts_given(insert, given))
