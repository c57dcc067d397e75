"""Mail to the staff member when their client's request locks or is first
opened. Call inside the transaction that made the change; the caller wakes
the outbox once it commits."""

from __future__ import annotations

from datetime import datetime

from gateway.core.models import PaymentRequest, RequestKind
from gateway.core.money import format_display
from gateway.core.settings import zone
from gateway.deps import Deps
from gateway.outbound import outbox


def _staff_address(request: PaymentRequest) -> str:
    # The staff row may be gone (removed staff): the sender's address stays.
    return request.staff.email if request.staff else request.sender


def _what(request: PaymentRequest) -> str:
    if request.kind is RequestKind.MESSAGE:
        return f"invoice {request.invoice}" if request.invoice else (request.title or f"R{request.id}")
    amount = format_display(request.amount_minor, request.currency)
    return f"invoice {request.invoice}, {amount}" if request.invoice else amount


def _kind(request: PaymentRequest) -> str:
    return "secure message" if request.kind is RequestKind.MESSAGE else "secure payment request"


def _local_time(request: PaymentRequest, at: datetime) -> str:
    return at.astimezone(zone(request.firm.timezone)).strftime("%Y-%m-%d %H:%M %Z")


async def locked(deps: Deps, request: PaymentRequest, failures: int, until: datetime, now: datetime) -> None:
    minutes = round((until - now).total_seconds() / 60)
    await _tell_staff(deps, request, now, kind="request-locked",
                      subject=f"Locked after wrong passwords: your request to {request.client_email}",
                      paragraphs=[
                          f"Someone typed a wrong password {failures} times in a row on the {_kind(request)} "
                          f"you sent to {request.client_email} ({_what(request)}).",
                          f"For safety it is locked for {minutes} minutes, until {_local_time(request, until)}. "
                          "Each new lock lasts twice as long.",
                          "If it was your client, they may have the wrong password: check what you told them. "
                          "They can try again once the lock ends.",
                      ])


async def viewed(deps: Deps, request: PaymentRequest, now: datetime) -> None:
    await _tell_staff(deps, request, now, kind="request-viewed",
                      subject=f"Opened: your request to {request.client_email}",
                      paragraphs=[
                          f"{request.client_email} opened the {_kind(request)} you sent ({_what(request)}) "
                          f"on {_local_time(request, now)}.",
                          "You will hear from us again when it is paid." if request.kind is RequestKind.PAYMENT
                          else "You will hear from us again if they reply.",
                      ])


async def _tell_staff(deps: Deps, request: PaymentRequest, now: datetime, *, kind: str, subject: str,
                      paragraphs: list[str]) -> None:
    await outbox.enqueue_notice(deps.composer, master_key=deps.master_key, kind=kind, now=now,
                                firm_domain=request.firm.domain, firm_name=request.firm.name,
                                to=_staff_address(request), subject=subject, paragraphs=paragraphs, request=request)
