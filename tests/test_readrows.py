"""The runner's claim and the sender's directory read their rows with SQL
of their own on SQLite and make the ORM's models of them with readrows:
each model is the one the ORM's own _init_from_db makes of the same row,
attribute for attribute and type for type, whatever the row holds (times
with and without fractions, dates, nulls, JSON, enums, booleans), and it
saves as one the ORM read does."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from gateway.core import db, readrows, rows
from gateway.core.models import Firm, InboundMessage, Level, Staff
from gateway.inbound import queue as inbound
from gateway.mail import context as mail_context

pytestmark = pytest.mark.sqlite_only

NOW = datetime(2026, 11, 27, 9, 0, 0, 123456, tzinfo=timezone.utc)


async def _rows_of(model, where: str = "1") -> list[tuple]:
    reader = readrows.reader(model)
    sql = f"SELECT {reader.projection} FROM {model._meta.db_table} WHERE {where} ORDER BY {model._meta.db_pk_column}"
    return await rows.on_sqlite_thread(rows.sqlite_client(), lambda connection: [
        tuple(row) for row in connection.execute(sql).fetchall()])


def _as_the_orm_makes_it(model, row: tuple):
    return model._init_from_db(**dict(zip(readrows.reader(model).columns, row)))


def _same(made, expected) -> None:
    assert vars(made).keys() == vars(expected).keys()
    for name, value in vars(expected).items():
        assert (getattr(made, name), type(getattr(made, name))) == (value, type(value)), name
        if isinstance(value, datetime):
            assert made.__dict__[name].tzinfo == value.tzinfo and made.__dict__[name].utcoffset() == value.utcoffset()


async def test_each_model_is_the_one_the_orm_makes_of_the_same_row(tmp_path):
    async with db.opened(f"sqlite://{tmp_path}/read.db"):
        plain = await Firm.create(domain="plain.example", name="Plain", created_at=NOW.replace(microsecond=0))
        await Firm.create(domain="full.example", name="Full", created_at=NOW, surcharge_notice_date=date(2024, 1, 2),
                          fee_by_default=True, card_fee_fixed_minor=30, ledger_accounts={"fees": "4010"},
                          reminder_after=[3, 7], language="fr", province="ON")
        await Staff.create(firm=plain, email="admin@plain.example", level=Level.ADMIN, name="A", created_at=NOW)
        await Staff.create(firm=plain, email="none@plain.example", level=Level.NONE, created_at=NOW)
        for arrival in (
            inbound.arrival(b"Subject: x\r\n\r\nx\r\n", master_key=bytes(32), mail_from="a@plain.example",
                            sender="a@plain.example", firm_domain="plain.example", rcpt_tos=["pay@gw.example"],
                            peer="127.0.0.1", trusted_peer=True, now=NOW),
            inbound.arrival(b"Subject: y\r\n\r\ny\r\n", master_key=bytes(32), mail_from="", sender="",
                            firm_domain="", rcpt_tos=["bounce+x@gw.example", "secure@gw.example"],
                            peer="192.0.2.1", trusted_peer=False, now=NOW.replace(microsecond=0)),
        ):
            await InboundMessage.create(**arrival.fields())
        await InboundMessage.filter(sender="").update(lease_until=NOW + timedelta(seconds=15), lease_owner="me",
                                                      finished_at=NOW, attempts=2, body_salt=b"\0salt")
        # A time written by another hand, with a T and no fraction: parsed as the ORM parses it.
        await rows.on_sqlite_thread(rows.sqlite_client(), lambda connection: connection.execute(
            "UPDATE staff SET created_at = '2026-11-27T09:00:00+00:00' WHERE level = 'none'"))
        for model in (Firm, Staff, InboundMessage):
            found = await _rows_of(model)
            assert len(found) == 2
            for row in found:
                _same(readrows.reader(model).made(row), _as_the_orm_makes_it(model, row))


async def test_a_model_it_made_saves_as_one_the_orm_read(tmp_path):
    async with db.opened(f"sqlite://{tmp_path}/read.db"):
        await Firm.create(domain="firm.example", name="Firm", created_at=NOW, surcharge_notice_date=date(2024, 1, 2))
        (row,) = await _rows_of(Firm)
        firm = readrows.reader(Firm).made(row)
        firm.language = "fr"
        await firm.save(update_fields=["language"])
        assert (await Firm.get(domain="firm.example")).language == "fr"
        await Staff.create(firm=firm, email="s@firm.example", level=Level.SEND, created_at=NOW)
        directory = await rows.on_sqlite_thread(rows.sqlite_client(), mail_context.directory_on_sqlite,
                                                "firm.example", "s@firm.example", "<m@firm.example>")
        found_firm, staff, admins, already = directory
        assert (found_firm.pk, found_firm.surcharge_notice_date, staff.level, staff.firm_id, admins, already) == \
            (firm.pk, date(2024, 1, 2), Level.SEND, firm.pk, [], False)
