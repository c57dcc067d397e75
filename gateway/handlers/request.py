"""Accepted: seal the body and attachments, make the payment request (or,
from secure@, the secure message), mail the client and confirm to the
sender."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.core import events
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
    wrapped = await deps.in_crypto_pool(vault.wrap_with_password, d.password, data_key, params, key_aad(token_hash))
    items = [await deps.in_crypto_pool(storing.seal_item, data_key, BODY_FILENAME, "text/plain", d.message.encode())]
    for attachment in message.attachments:
        if attachment.sealed is None:
            items.append(await deps.in_crypto_pool(
                storing.seal_item, data_key, attachment.filename, attachment.content_type, attachment.data))
    fresh = await storing.put_items(deps.blobs, items)
    # In the message's order: the text, then each attachment, stored now or as the message was read.
    later = iter(fresh[1:])
    stored = [fresh[0]] + [
        attachment.sealed.stored_as(attachment.filename, attachment.content_type)
        if attachment.sealed is not None else next(later)
        for attachment in message.attachments
    ]
    if taken is not None:
        taken.files = []  # the request's now: discarded below with the rest if it is not made

    now = context.now
    message_kind = d.kind is RequestKind.MESSAGE
    amount = "" if message_kind else format_display(d.amount_minor, d.currency)
    # +fee works only once the firm's notice to the card networks has taken
    # effect; before, the request goes out without it and the sender is told why.
    today = surcharge.local_day(firm, now)
    pass_fee = d.pass_fee and surcharge.may_surcharge(firm, today) and not message_kind
    fee_row = surcharge.why_not(firm, today) if d.pass_fee and not pass_fee and not message_kind else ""
    try:
        async with in_transaction():
            request = await PaymentRequest.create(
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
                wrapped_key=wrapped,
                source_message_id=message.message_id or f"<queue-{queued.id}>",
                created_at=now,
                expires_at=d.expires_at,
            )
            await storing.record(request, stored)
            client_mail = clientmail.compose(deps, request, firm, staff, token, now)
            if pass_fee:
                line = surcharge.fee_line(request, firm, deps.payments.config)
                fee_row = f"passed on to the client: {line}" if line else \
                    "passed on to the client where the card rules allow one (none for this firm's location)"
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
                request_ref=f"R{request.id}",
                now=now,
                card_fee=fee_row,
                kind=d.kind.value,
                extra_rows=_asked(d),
            )
            await outbox.enqueue(
                client_mail, master_key=deps.master_key, kind="client-request", now=now,
                request=request, notify_on_failure=staff.email,
            )
            await outbox.enqueue(confirmation, master_key=deps.master_key, kind="confirmation", now=now, request=request)
            await events.record(
                now, staff.email, "request.created", firm=firm, request=request, kind=d.kind.value,
                invoice=d.invoice, client=d.client, amount=amount, attachments=len(message.attachments),
                queue_id=queued.id,
            )
            await inbound.finish(queued, f"request R{request.id}", now)
    except IntegrityError:
        # Another runner made it from the same message first: nothing to add.
        await storing.discard(deps.blobs, stored)
        log.info("queue %s: duplicate of an existing request", queued.id)
        await inbound.finish(queued, "duplicate", now)
        return
    # Any other failure leaves the objects alone: a COMMIT that failed on
    # the way back may still have happened, and then rows name them.
    deps.outbox_wake.set()


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
