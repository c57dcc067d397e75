"""Rows written by gateway/core/rows.py (the request's, the outbox's) are
the rows the ORM writes: the same columns, the same stored values; a
request's rows are written all or none."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from gateway import vault
from gateway.core import datadir, events, rows, sqlite_threads
from gateway.core.models import (
    Event, Firm, InboundMessage, InboundRaw, InboundStatus, OutboundMessage, PaymentRequest, RequestKind, SealedFile, Staff,
)
from gateway.handlers.request import write_request, write_request_here
from gateway.inbound import queue as inbound
from gateway.mail import context
from gateway.outbound import outbox
from gateway.outbound.compose import Composed
from tests.conftest import request_mail
from tests.test_runner import START, enqueue, queue, world  # noqa: F401 (world is a fixture)


def a_request(firm: Firm, staff: Staff, token_hash: str, message_id: str = "<m1@demo.localhost>") -> PaymentRequest:
    return PaymentRequest(
        firm=firm, staff=staff, sender=staff.email, kind=RequestKind.PAYMENT, lang="fr", upload_items=["ID", "T4"],
        remind=False, invoice="INV-7", client_email="jane@client.example", title="Taxes", amount_minor=12345,
        currency="CAD", pass_fee=True, customer="", hint="the usual", token_hash=token_hash,
        sealed_token=b"\x00sealed", kdf={"m": 19456, "t": 2, "p": 1, "salt": "c2FsdA=="}, wrapped_key=b"wrapped\x00",
        source_message_id=message_id, created_at=START, expires_at=START + timedelta(days=30),
    )


def others(request_id: int, firm: Firm) -> list:
    mail = Composed(rcpt_to="jane@client.example", mail_from="pay@demo.localhost", subject="Taxes",
                    wire=b"From: pay@demo.localhost\r\nTo: jane@client.example\r\nSubject: Taxes\r\n\r\nhello\r\n")
    return [
        rows.New(SealedFile, dict(request_id=request_id, position=0, is_body=True, filename="message.txt",
                                  content_type="text/plain", size=5, file_salt=b"salt\x00", chunk_count=1,
                                  blob="f/00/ab")),
        rows.New(SealedFile, dict(request_id=request_id, position=1, filename="a.pdf", content_type="application/pdf",
                                  size=100_000, file_salt=b"salt2", chunk_count=2, blob="f/01/cd", upload_item=1)),
        outbox.prepared(mail, master_key=b"k" * 32, kind="client-request", now=START, request_id=request_id,
                        notify_on_failure="staff@demo.localhost"),
        events.entry(START, "staff@demo.localhost", "request.created", firm=firm, request_id=request_id,
                     kind="payment", amount="$123.45", attachments=1),
    ]


@pytest.fixture(params=["the ORM's connection", pytest.param("a crypto thread's own", marks=pytest.mark.sqlite_only)])
def write(request, world):  # noqa: F811 (world is a fixture)
    """write_request, or the same write on a crypto thread's own SQLite
    connection (write_request_here, as a request is made on SQLite)."""
    if request.param == "the ORM's connection":
        return write_request
    deps, _ = world

    async def on_crypto_thread(*args):
        return await deps.in_crypto_pool(write_request_here, deps.crypto_connections, sqlite_threads.file_client(),
                                          *args)
    return on_crypto_thread


async def stored(model, **where) -> list[dict]:
    """The rows as the database holds them, without their ids."""
    table = model._meta.db_table
    found = await model.filter(**where).order_by("id").values_list("id", flat=True)
    client = connections.get("default")
    out = []
    for row_id in found:
        sql = rows.for_dialect(f"SELECT * FROM {table} WHERE id = ?", client.capabilities.dialect)
        _, [row] = await client.execute_query(sql, [row_id])
        row = dict(row)
        for column in ("id", "request_id", "sealed_message"):  # sealed: a fresh nonce each time
            row.pop(column, None)
        out.append(row)
    return out


async def test_the_rows_are_the_ones_the_orm_writes(world, write):
    deps, clock = world
    firm = await Firm.get(domain="demo.localhost")
    staff = await Staff.get(firm=firm)
    # Through the ORM, as the code before wrote them.
    by_orm = a_request(firm, staff, "a" * 64)
    await by_orm.save()
    for row in others(by_orm.id, firm):  # each the ORM's instance, saved as the ORM saves it
        await row.made().save()
    # Through write_request (or the same write on a crypto thread's own connection).
    queue_id = await enqueue(deps)
    queued = await inbound.claim(clock(), timedelta(minutes=5), "me")
    assert queued is not None and queued.id == queue_id
    request_id = await write(a_request(firm, staff, "b" * 64, "<m2@demo.localhost>"),
                                     lambda made: others(made, firm), queued, clock())
    ours = await PaymentRequest.get(id=request_id)
    assert ours.id != by_orm.id
    [orm_row], [our_row] = await stored(PaymentRequest, id=by_orm.id), await stored(PaymentRequest, id=request_id)
    for differing in ("token_hash", "source_message_id"):
        orm_row.pop(differing), our_row.pop(differing)
    assert our_row == orm_row
    for model in (SealedFile, OutboundMessage, Event):
        orm_rows = await stored(model, request_id=by_orm.id)
        assert orm_rows and await stored(model, request_id=request_id) == orm_rows
    sealed = [(await OutboundMessage.get(request_id=made)).sealed_message for made in (by_orm.id, request_id)]
    assert len({vault.open_with_master(b"k" * 32, box, b"outbound:jane@client.example") for box in sealed}) == 1
    # The ORM reads them back the same (types, time zones, JSON).
    assert ours.kdf == by_orm.kdf and ours.upload_items == ["ID", "T4"] and ours.expires_at == by_orm.expires_at
    # And the queued message is finished, as inbound.finish leaves it.
    done = await InboundMessage.get(id=queue_id)
    assert (done.status, done.outcome, done.lease_owner, done.lease_until) == (
        InboundStatus.DONE, f"request R{request_id}", "", None)
    assert not await InboundRaw.filter(id=queue_id).exists()  # its sealed copy went with it
    assert done.finished_at == clock()


async def test_a_lost_lease_or_a_duplicate_writes_nothing(world, write):
    deps, clock = world
    firm = await Firm.get(domain="demo.localhost")
    staff = await Staff.get(firm=firm)
    await enqueue(deps)
    queued = await inbound.claim(clock(), timedelta(minutes=5), "me")
    # Another runner took it meanwhile.
    await InboundMessage.filter(id=queued.id).update(lease_owner="someone else")
    with pytest.raises(inbound.LeaseLost):
        await write(a_request(firm, staff, "c" * 64), lambda made: others(made, firm), queued, clock())
    assert not await PaymentRequest.exists() and not await SealedFile.exists()
    assert not await OutboundMessage.exists() and not await Event.filter(action="request.created").exists()
    await InboundMessage.filter(id=queued.id).update(lease_owner="me")
    # The same sender's Message-ID made a request already (the unique key).
    await a_request(firm, staff, "d" * 64).save()
    with pytest.raises(IntegrityError):
        await write(a_request(firm, staff, "e" * 64), lambda made: others(made, firm), queued, clock())
    assert await PaymentRequest.all().count() == 1 and not await OutboundMessage.exists()
    assert (await InboundMessage.get(id=queued.id)).status is InboundStatus.PROCESSING


@pytest.mark.sqlite_only  # SQLite's own connection: PostgreSQL keeps a large value out of line (TOAST)
async def test_finishing_a_request_frees_the_sealed_copy_without_rewriting_it(world, write):
    deps, clock = world
    path = datadir.sqlite_path(deps.settings.database)
    firm = await Firm.get(domain="demo.localhost")
    staff = await Staff.get(firm=firm)
    scan = request_mail("Invoice 7 $10.00 to=jane@client.example pw=Blue42",
                        attachments=[("scan.pdf", "application/pdf", bytes(range(256)) * 2000)])  # 512 KB
    queue_id = await queue(scan.as_bytes(), deps.master_key, clock())
    queued = await inbound.claim(clock(), timedelta(minutes=5), "me")
    client = connections.get("default")
    _, [[setting]] = await client.execute_query("PRAGMA secure_delete")
    await client.execute_script("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL from its start: what the commit writes
    await write(a_request(firm, staff, "a" * 64), lambda made: others(made, firm), queued, clock())
    assert not await InboundRaw.filter(id=queue_id).exists()
    written = Path(path + "-wal").stat().st_size
    # The copy's ~170 pages were written to the WAL once more, zeroed (SECURE_DELETE's), with the request's rows.
    assert written < len(queued.sealed_raw) / 4
    _, [[after]] = await client.execute_query("PRAGMA secure_delete")
    assert after == setting  # other deletions zero what they free as before


def fields_of(model) -> dict | None:
    return None if model is None else {name: getattr(model, name) for name in model._meta.fields_db_projection}


async def test_the_mail_context_reads_the_directory_as_the_orm_does(world):
    deps, clock = world
    firm = await Firm.get(domain="demo.localhost")
    staff = await Staff.get(firm=firm)
    await Staff.create(firm=firm, email="b-admin@demo.localhost", level="admin", created_at=START)
    await Staff.create(firm=firm, email="a-sender@demo.localhost", level="send", created_at=START)
    await a_request(firm, staff, "f" * 64, "<seen@demo.localhost>").save()
    for domain, sender, message_id in (("demo.localhost", staff.email, "<seen@demo.localhost>"),
                                       ("demo.localhost", staff.email, "<new@demo.localhost>"),
                                       ("demo.localhost", "a-sender@demo.localhost", ""),
                                       ("demo.localhost", "stranger@x.example", "<seen@demo.localhost>"),
                                       ("demo.localhost", "", "<seen@demo.localhost>"),
                                       ("nowhere.example", staff.email, "<seen@demo.localhost>")):
        ours = await context._directory(domain, sender, message_id)
        theirs = await context._directory_by_orm(domain, sender, message_id)
        assert [fields_of(ours[0]), fields_of(ours[1]), *ours[2:]] == \
            [fields_of(theirs[0]), fields_of(theirs[1]), *theirs[2:]]
    found = await context._directory("demo.localhost", staff.email, "<seen@demo.localhost>")
    assert found[1].firm_id == firm.id and found[2] == ["b-admin@demo.localhost", staff.email] and found[3]
    # The models read are the ORM's own: they save as usual.
    found[0].name = "Renamed"
    await found[0].save()
    assert (await Firm.get(id=firm.id)).name == "Renamed"
