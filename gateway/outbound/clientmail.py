"""The client's mail: the secure request with its "View your email" link.
Sent when a request is made and again by `remind`, so the link token is kept
sealed under the master key (the database alone cannot open it)."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from gateway import vault
from gateway.core.models import Firm, PaymentRequest, Staff
from gateway.core.money import format_display
from gateway.deps import Deps
from gateway.payments import surcharge


def _token_aad(token_hash: str) -> bytes:
    return b"link-token:" + token_hash.encode()


def seal_token(master_key: bytes, token: str) -> bytes:
    return vault.seal_with_master(master_key, token.encode(), _token_aad(vault.token_hash(token)))


def open_token(master_key: bytes, request: PaymentRequest) -> str:
    return vault.open_with_master(master_key, request.sealed_token, _token_aad(request.token_hash)).decode()


def link(deps: Deps, token: str) -> str:
    return f"{deps.settings.public_base_url}/r/{token}"


def compose(deps: Deps, request: PaymentRequest, firm: Firm, staff: Staff | None, token: str,
            now: datetime) -> EmailMessage:
    expires = request.expires_at.astimezone(ZoneInfo(firm.timezone)).date()
    return deps.composer.client_request(
        firm_name=firm.name,
        firm_domain=firm.domain,
        staff_email=staff.email if staff else request.sender,
        staff_name=staff.name if staff else "",
        client_email=request.client_email,
        title=request.title,
        invoice=request.invoice,
        amount=format_display(request.amount_minor, request.currency),
        hint=request.hint,
        link=link(deps, token),
        expires_on=expires.isoformat(),
        now=now,
        card_fee=_sentence(surcharge.fee_line(request, firm, deps.payments.config)),
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "." if text else ""
