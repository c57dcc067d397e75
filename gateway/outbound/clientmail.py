"""The client's mail: the secure request (or secure message) with its
"View your email" link, in the client's language. Sent when a request is
made and again by `remind` and the reminder schedule, so the link token is
kept sealed under the master key (the database alone cannot open it)."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from gateway import vault
from gateway.core.models import Firm, PaymentRequest, RequestKind, Staff
from gateway.deps import Deps
from gateway.outbound.words import words
from gateway.payments import feewords


def _token_aad(token_hash: str) -> bytes:
    return b"link-token:" + token_hash.encode()


def seal_token(master_key: bytes, token: str) -> bytes:
    return vault.seal_with_master(master_key, token.encode(), _token_aad(vault.token_hash(token)))


def open_token(master_key: bytes, request: PaymentRequest) -> str:
    return vault.open_with_master(master_key, request.sealed_token, _token_aad(request.token_hash)).decode()


def link(deps: Deps, token: str) -> str:
    return f"{deps.settings.public_base_url}/r/{token}"


def can_reply(request: PaymentRequest) -> bool:
    """Whether the client's page takes a reply: a secure message, or a
    request that asks for documents."""
    return request.kind is RequestKind.MESSAGE or bool(request.upload_items)


def compose(deps: Deps, request: PaymentRequest, firm: Firm, staff: Staff | None, token: str,
            now: datetime, *, reminder: bool = False) -> EmailMessage:
    """The client's mail; ``reminder``: sent again (remind, the schedule),
    saying when it first went."""
    zone = ZoneInfo(firm.timezone)
    w = words(request.lang)
    message = request.kind is RequestKind.MESSAGE
    return deps.composer.client_request(
        firm_name=firm.name,
        firm_domain=firm.domain,
        staff_email=staff.email if staff else request.sender,
        staff_name=staff.name if staff else "",
        client_email=request.client_email,
        title=request.title,
        invoice=request.invoice,
        amount="" if message else w.amount(request.amount_minor, request.currency),
        hint=request.hint,
        link=link(deps, token),
        expires_on=w.date(request.expires_at.astimezone(zone).date()),
        now=now,
        card_fee="" if message else _sentence(feewords.fee_line(request, firm, deps.payments.config, w)),
        kind=request.kind.value,
        lang=w.lang,
        upload_items=tuple(request.upload_items or ()),
        can_reply=can_reply(request),
        reminder_of=w.date(request.created_at.astimezone(zone).date()) if reminder else "",
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "." if text else ""
