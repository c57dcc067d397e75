"""Accepted: seal the body and attachments, make the payment request (or,
from secure@, the secure message), mail the client and confirm to the
sender."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from tortoise import Model
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.blobs import BlobStore
from gateway.core import events, rows, sqlite_threads, writeturns
from gateway.core.language import LANGUAGES
from gateway.core.models import InboundMessage, PaymentRequest, RequestKind
from gateway.core.money import format_display
from gateway.deps import Deps
from gateway.documents import storing
from gateway.inbound import queue as inbound
from gateway.inbound.large import Taken
from gateway.mail.context import MailContext
from gateway.mail.directives import PaymentDirectives
from gateway.outbound import clientmail, outbox
from gateway.outbound.compose import Composed
from gateway.payments import surcharge
from gateway.vault.sealed import key_aad

log = logging.getLogger("clienttrack.request")

BODY_FILENAME = "message.txt"


async def create_request(deps: Deps, queued: InboundMessage, context: MailContext, taken: Taken | None = None) -> None:
    """``taken``: a large message's attachments, already sealed under its
    data key and stored (inbound/large.py); they become the request's."""
    d: PaymentDirectives = context.parsed_request
    firm, staff, message = context.firm, context.staff, context.message
    settings = deps.settings
    token = vault.new_token()
    token_hash = vault.token_hash(token)
    data_key = taken.data_key if taken is not None else vault.new_data_key()
    params = vault.new_kdf_params(settings.kdf_memory_kib, settings.kdf_iterations)
    now = context.now
    message_kind = d.kind is RequestKind.MESSAGE
    amount = "" if message_kind else format_display(d.amount_minor, d.currency)
    # +fee works only once the firm's notice to the card networks has taken
    # effect; before, the request goes out without it and the sender is told why.
    today = surcharge.local_day(firm, now)
    pass_fee = d.pass_fee and surcharge.may_surcharge(firm, today) and not message_kind
    fee_row = surcharge.why_not(firm, today) if d.pass_fee and not pass_fee and not message_kind else ""
    request = PaymentRequest(
        firm=firm,
        staff=staff,
        sender=context.sender,
        kind=d.kind,
        lang=d.lang,
        upload_items=list(d.upload_items),
        remind=d.remind,
        invoice=d.invoice,
        client_email=d.client,
        title=d.title,
        amount_minor=d.amount_minor,
        currency=d.currency,
        pass_fee=pass_fee,
        customer=d.customer,
        hint=d.hint,
        token_hash=token_hash,
        sealed_token=clientmail.seal_token(deps.master_key, token),
        kdf=params.to_json(),
        source_message_id=message.message_id or f"<queue-{queued.id}>",
        created_at=now,
        expires_at=d.expires_at,
    )
    if pass_fee:
        line = surcharge.fee_line(request, firm, deps.payments.config)
        fee_row = f"passed on to the client: {line}" if line else \
            "passed on to the client where the card rules allow one (none for this firm's location)"

    def rows_naming(request_id: int, stored: list[storing.Stored], client_mail: Composed) -> list[rows.New]:
        """The rows that follow the request's: they name it (the
        confirmation by its number). Run where the rows are written."""
        confirmation = deps.composer.confirmation(
            firm_name=firm.name,
            firm_domain=firm.domain,
            staff_email=staff.email,
            client_email=d.client,
            title=d.title,
            invoice=d.invoice,
            amount=amount,
            hint=d.hint,
            expires_on=d.expires_at.astimezone(ZoneInfo(firm.timezone)).date().isoformat(),
            attachment_names=[a.filename for a in message.attachments],
            generated_password=d.password if d.password_generated else None,
            in_reply_to=message.message_id,
            request_ref=f"R{request_id}",
            now=now,
            card_fee=fee_row,
            kind=d.kind.value,
            extra_rows=_asked(d),
        )
        return [
            *storing.files(request_id, stored),
            outbox.prepared(client_mail, master_key=deps.master_key, kind="client-request", now=now,
                            request_id=request_id, notify_on_failure=staff.email),
            outbox.prepared(confirmation, master_key=deps.master_key, kind="confirmation", now=now,
                            request_id=request_id),
            events.entry(now, staff.email, "request.created", firm=firm, request_id=request_id, kind=d.kind.value,
                         invoice=d.invoice, client=d.client, amount=amount, attachments=len(message.attachments),
                         queue_id=queued.id),
        ]

    # The derivation, the sealing, the client's mail and the sealed files'
    # put in one hand-off to the crypto pool (they ran one after the other
    # anyway: each hand-off is a trip through the event loop, two context
    # switches and a wake-up, and the loop is spared the rendering).
    sealed = partial(_wrap_seal_compose_and_store, d, data_key, params, key_aad(token_hash), message.attachments,
                     partial(clientmail.compose, deps, request, firm, staff, token, now), deps.blobs)
    client = sqlite_threads.file_client()
    if client is not None and deps.blobs.put_all_blocking is not None:
        # On a SQLite file the request's write too, in the same hand-off, on
        # the crypto thread's own connection (_sealed_and_written).
        request_id, stored = await deps.in_crypto_pool(_sealed_and_written, sealed, deps.crypto_connections, client,
                                                       request, rows_naming, message.attachments, taken, queued, now)
    else:
        # A store whose puts are the loop's own (S3) is given the files
        # after; the write is the ORM's connection's (PostgreSQL's, or
        # SQLite's thread).
        request.wrapped_key, items, fresh, client_mail = await deps.in_crypto_pool(sealed)
        if fresh is None:
            fresh = await storing.put_items(deps.blobs, items)
        stored = _in_message_order(fresh, message.attachments)
        if taken is not None:
            taken.files = []  # the request's now: discarded below with the rest if it is not made
        try:
            request_id = await write_request(request, partial(rows_naming, stored=stored, client_mail=client_mail),
                                             queued, now)
        except IntegrityError:
            request_id = None
    if request_id is None:
        # Another runner made it from the same message first: nothing to add.
        await storing.discard(deps.blobs, stored)
        log.info("queue %s: duplicate of an existing request", queued.id)
        await inbound.finish(queued, "duplicate", now)
        return
    # Any other failure leaves the objects alone: a COMMIT that failed on
    # the way back may still have happened, and then rows name them (if
    # none does, documents/orphans.py sweeps them a day later).
    deps.outbox_wake.set()


def _in_message_order(fresh: list[storing.Stored], attachments) -> list[storing.Stored]:
    """The request's files in the message's order: the text, then each
    attachment, stored now (``fresh``, after the text) or as the message
    was read (a large message's)."""
    later = iter(fresh[1:])
    return [fresh[0]] + [
        attachment.sealed.stored_as(attachment.filename, attachment.content_type)
        if attachment.sealed is not None else next(later)
        for attachment in attachments
    ]


def _sealed_and_written(sealed: Callable[[], tuple], connections: sqlite_threads.ThreadConnections, client,
                        request: PaymentRequest,
                        rows_naming: Callable[..., list[rows.New]], attachments, taken: Taken | None,
                        queued: InboundMessage, now: datetime) -> tuple[int | None, list[storing.Stored]]:
    """On a crypto thread: ``sealed()`` (the derivation, sealing, the
    client's mail, the files stored), then the request's write, as
    write_request writes it on SQLite, on this thread's own connection
    (``connections``, gateway/core/sqlite_threads.py): a trip back through the event loop and
    out to the ORM's database thread fewer, and none of the process's other
    statements held behind the write there. The request's id, or None
    when the request was made already (the unique key on the firm, sender
    and Message-ID: another runner, of any process, made it first); and
    its stored files. The same statements in the same transaction and
    turn at the write lock as on the database's thread: what is durable
    when, and what a crash leaves, is as _unflushed_write_on_sqlite says
    (the files stored first, so that no row ever names a missing one)."""
    request.wrapped_key, _, fresh, client_mail = sealed()
    stored = _in_message_order(fresh, attachments)
    if taken is not None:
        # The request's now (the loop awaits this hand-off: nothing reads
        # it meanwhile); discarded with the rest if it is a duplicate.
        taken.files = []
    try:
        request_id = write_request_here(connections, client, request,
                                        partial(rows_naming, stored=stored, client_mail=client_mail), queued, now)
    except IntegrityError:
        return None, stored
    return request_id, stored


def _wrap_seal_compose_and_store(d: PaymentDirectives, data_key: bytes, params, aad: bytes, attachments,
                                 client_mail: Callable[[], Composed], store: BlobStore,
                                 ) -> tuple[bytes, list[storing.SealedItem], list[storing.Stored] | None, Composed]:
    """The data key wrapped under the password, the text and each
    attachment not sealed yet sealed under it, the client's mail composed,
    and the sealed files stored, unless the store puts them only from the
    event loop (its put_all_blocking is None: then None for them). CPU and
    disk: the crypto pool's. Stored last, so that nothing after it here
    can fail and leave them named by no row."""
    wrapped = vault.wrap_with_password(d.password, data_key, params, aad)
    items = [storing.seal_item(data_key, BODY_FILENAME, "text/plain", d.message.encode())]
    items += [storing.seal_item(data_key, attachment.filename, attachment.content_type, attachment.data)
              for attachment in attachments if attachment.sealed is None]
    composed = client_mail()
    stored = storing.put_items_blocking(store, items) if store.put_all_blocking is not None else None
    return wrapped, items, stored, composed


async def write_request(request: PaymentRequest, rows_naming: Callable[[int], list[rows.New]],
                        queued: InboundMessage, now: datetime) -> int:
    """In one transaction: the request, the rows ``rows_naming(its id)``
    gives (inserted in that order), and the queued message finished
    ("request R<id>", its sealed copy deleted); LeaseLost (nothing written) if this runner no longer
    holds the message. The statements are the ORM's (gateway/core/rows.py);
    on SQLite all of it is one function on the database's thread. Returns
    the request's id."""
    client = rows.sqlite_client()
    if client is not None:
        # In this process's turn at the write lock (gateway/core/writeturns.py).
        return await rows.on_sqlite_thread(client, writeturns.in_turn, _unflushed_write_on_sqlite, client,
                                           request, rows_naming, queued, now)
    async with in_transaction() as connection:
        made = rows.insert(PaymentRequest, connection)
        record = await connection.execute_insert(made.sql, made.values(request))
        request_id = record["id"]
        for model, group in _by_model(rows_naming(request_id)):
            statement = rows.insert(model, connection)
            await connection.execute_many(statement.sql, [statement.row(new) for new in group])
        finished, _ = await connection.execute_query(
            rows.numbered(inbound.FINISH), inbound.finish_values(queued, f"request R{request_id}", now))
        if finished != 1:
            raise inbound.lease_lost(queued)
        await connection.execute_query(rows.numbered(inbound.FORGET_RAW), [queued.id])
        return request_id


def write_request_here(connections: sqlite_threads.ThreadConnections, client, request: PaymentRequest,
                       rows_naming: Callable[[int], list[rows.New]], queued: InboundMessage, now: datetime) -> int:
    """write_request on a SQLite file (``client``, the ORM's:
    sqlite_threads.file_client()), from a worker thread, on its own
    connection of ``connections``: the same statements, transaction and
    turn at the write lock as on the ORM's database thread."""
    return connections.run(client, writeturns.in_turn, _unflushed_write_on_sqlite, client, request, rows_naming,
                           queued, now)


def _unflushed_write_on_sqlite(connection: sqlite3.Connection, client, request: PaymentRequest,
                               rows_naming: Callable[[int], list[rows.New]], queued: InboundMessage,
                               now: datetime) -> int:
    # The commit is not flushed by itself: nothing of the request leaves
    # the machine before the outbox flushes the log it is in, once a batch
    # of mail, before any of it goes (outbox.flush_commits). Lost to a
    # power cut, the request was never written: its queued message was not
    # finished either, and is made into a request again (the blobs stored
    # for the lost one are named by no row and cannot be opened).
    with rows.unflushed(connection):
        return rows.in_transaction(connection, _write_on_sqlite, client, request, rows_naming, queued, now)


def _write_on_sqlite(connection: sqlite3.Connection, client, request: PaymentRequest,
                     rows_naming: Callable[[int], list[rows.New]], queued: InboundMessage, now: datetime) -> int:
    made = rows.insert(PaymentRequest, client)
    request_id = connection.execute(made.sql, made.values(request)).lastrowid
    for model, group in _by_model(rows_naming(request_id)):
        statement = rows.insert(model, client)
        connection.executemany(statement.sql, [statement.row(new) for new in group])
    if connection.execute(inbound.FINISH, inbound.finish_values(queued, f"request R{request_id}", now)).rowcount != 1:
        raise inbound.lease_lost(queued)
    inbound.forget_raw_on_sqlite(connection, queued.id)
    return request_id


def _by_model(made: list[rows.New]) -> list[tuple[type[Model], list[rows.New]]]:
    """Consecutive rows of one model together (one executemany each), in order."""
    groups: list[tuple[type[Model], list[rows.New]]] = []
    for new in made:
        if groups and groups[-1][0] is new.model:
            groups[-1][1].append(new)
        else:
            groups.append((new.model, [new]))
    return groups


_LANGUAGE_NAMES = {"en": "English", "fr": "French"}


def _asked(d: PaymentDirectives) -> list[tuple[str, str]]:
    """The confirmation's rows for what else the sender asked for."""
    rows = []
    if d.upload_items:
        rows.append(("Documents asked", "; ".join(d.upload_items)))
    if d.lang in LANGUAGES:
        rows.append(("Client's language", _LANGUAGE_NAMES[d.lang]))
    if not d.remind:
        rows.append(("Reminders", "none (remind=no)"))
    return rows
