"""Applying what a provider reports to our requests: the one place a
request becomes paid, failed, refunded or disputed.

A webhook, the return page asking Stripe, and the sandbox checkout all end
here with a :class:`PaymentState` (a snapshot of the PaymentIntent *now*),
so they cannot disagree. The rules are monotonic, which makes the order of
events irrelevant:

* ``SENT | VIEWED | FAILED`` → ``PAID`` when the snapshot says succeeded
  and the amount received settles the request (the amount, or the amount
  plus the fee the card rules allow for the card actually used) in its
  currency. The transition is one conditional ``UPDATE ... WHERE status IN
  (payable)``, so of any number of concurrent or repeated reports exactly one
  moves the request and queues the receipt and the staff notice.
  A payment that arrives for a cancelled or expired request is still money
  received: the request becomes paid and is flagged for a person.
* A mismatch (amount, currency, a second payment for a paid request, a
  payment on another firm's account) never marks anything paid: it sets
  ``flagged`` and tells the staff member once.
* ``→ FAILED`` only from a payable state: a stale ``payment_failed`` that
  arrives after ``succeeded`` cannot un-pay (and its snapshot says
  succeeded anyway). A failed request stays payable.
* refunds only grow ``refunded_minor`` (the charge's cumulative
  ``amount_refunded``): ``PARTIALLY_REFUNDED`` below the total, ``REFUNDED``
  at it.
* ``→ DISPUTED`` from any paid state; it is not undone here (a dispute that
  is won is visible in Stripe; reports show the request as disputed).
* a payout records its deposit date on the requests it settles.

:func:`apply_state` must run inside a transaction (the webhook's, which
also claims the event); :func:`apply_in_transaction` opens one. Mail is
queued in the same transaction through :func:`gateway.outbound.outbox.enqueue`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from tortoise.transactions import in_transaction

from gateway.core import events, metrics
from gateway.core.clock import Clock
from gateway.core.models import Firm, PaymentRequest, RequestKind, RequestStatus, Staff
from gateway.core.money import format_display
from gateway.outbound import outbox
from gateway.outbound.compose import Composer
from gateway.outbound.words import words
from gateway.payments import receipts
from gateway.payments.config import PaymentsConfig
from gateway.payments.feewords import rule_text
from gateway.payments.provider import (
    PAID_FAMILY,
    PAYABLE,
    AlreadyPaid,
    ConfirmOutcome,
    NotPayable,
    NotRefundable,
    PayAttempt,
    PaymentProvider,
    PaymentState,
    RefundResult,
    allowed_totals,
    quote_for_request,
)

log = logging.getLogger("clienttrack.payments")


class Services(Protocol):
    """What the ledger needs of the running gateway (gateway.deps.Deps has
    it): the clock, what the mail a change sends is composed and sealed with,
    and the outbox's wake-up."""

    clock: Clock
    composer: Composer
    master_key: bytes
    outbox_wake: asyncio.Event

# Money that arrives for these is still money received: paid, and flagged.
_LATE = frozenset({RequestStatus.CANCELLED, RequestStatus.EXPIRED})


@dataclass(frozen=True)
class DisputeInfo:
    dispute_id: str
    reason: str = ""
    due_by: datetime | None = None


@dataclass(frozen=True)
class Applied:
    outcome: str
    request_id: int | None = None
    # Mail was queued: wake the outbox once the transaction has committed.
    mail: bool = False


def _count(state: str, text: str) -> str:
    """Count a change that happened (a text says it did) in the metrics."""
    if text:
        metrics.PAYMENTS.labels(state).inc()
    return text


async def apply_state(
    state: PaymentState,
    *,
    deps: Services,
    config: PaymentsConfig,
    actor: str,
    now: datetime | None = None,
    dispute: DisputeInfo | None = None,
    request_id: int | None = None,
) -> Applied:
    """Bring the matching request in line with ``state``. Call inside a transaction."""
    now = now or deps.clock()
    request = await find_request(state, request_id)
    if request is None:
        return Applied(f"ignored: no request for {state.intent_id}")
    firm = await Firm.get(id=request.firm_id)
    # Direct charges: a payment counts only on the request's own firm's account
    # (a firm's own API keys could make PaymentIntents naming any request id).
    if state.provider == "stripe" and state.account != firm.stripe_account_id:
        log.warning("payment %s is on account %s, not on R%s's firm's account", state.intent_id, state.account,
                    request.id)
        return Applied(f"ignored: {state.intent_id} is on another account than R{request.id}'s firm", request.id)

    done: list[str] = []
    mail = False
    if state.succeeded:
        text, queued = await _paid(request, firm, state, deps=deps, config=config, actor=actor, now=now)
        _count("paid", text)
        done.append(text)
        mail |= queued
    elif state.status == "requires_payment_method" and state.failure_message:
        done.append(_count("failed", await _failed(request, firm, state, actor=actor, now=now)))
    request = await PaymentRequest.get(id=request.id)
    if state.refunded_minor > request.refunded_minor and request.provider_ref == state.intent_id:
        text, queued = await _refunded(request, firm, state, deps=deps, actor=actor, now=now)
        _count("refunded", text)
        done.append(text)
        mail |= queued
    if (dispute is not None or state.disputed) and request.provider_ref == state.intent_id:
        text, queued = await _disputed(request, firm, dispute, deps=deps, actor=actor, now=now)
        _count("disputed", text)
        done.append(text)
        mail |= queued
    done = [d for d in done if d]
    return Applied("; ".join(done) or f"no change (payment {state.status})", request.id, mail)


async def apply_in_transaction(state: PaymentState, *, deps: Services, config: PaymentsConfig, actor: str,
                               dispute: DisputeInfo | None = None) -> Applied:
    async with in_transaction():
        applied = await apply_state(state, deps=deps, config=config, actor=actor, dispute=dispute)
    if applied.mail:
        deps.outbox_wake.set()
    return applied


async def find_request(state: PaymentState, request_id: int | None = None) -> PaymentRequest | None:
    """The request a payment belongs to: by its intent id, else by the
    request id we put in its metadata."""
    found = await PaymentRequest.filter(provider=state.provider, provider_ref=state.intent_id).first()
    if found is not None:
        return found
    rid = request_id or state.request_id
    if rid is None:
        return None
    found = await PaymentRequest.get_or_none(id=rid)
    if found is None or found.provider not in ("", state.provider):
        return None
    return found


# -- transitions --------------------------------------------------------------------


async def _paid(request: PaymentRequest, firm: Firm, state: PaymentState, *, deps: Services, config: PaymentsConfig,
                actor: str, now: datetime) -> tuple[str, bool]:
    received = state.amount_received_minor
    allowed = allowed_totals(request, firm, config, funding=state.funding, province=state.province)
    problems = []
    if state.currency.upper() != request.currency.upper():
        problems.append(f"the payment {state.intent_id} is in {state.currency.upper()}, the request in {request.currency}")
    elif received not in allowed:
        expected = " or ".join(format_display(a, request.currency) for a in sorted(allowed))
        problems.append(f"the payment {state.intent_id} received {format_display(received, request.currency)}, "
                        f"expected {expected}")
    if request.status in PAID_FAMILY:
        if request.provider == state.provider and request.provider_ref == state.intent_id:
            return "", False
        problems.append(f"a second payment ({state.intent_id}) arrived for a request already paid by "
                        f"{request.provider_ref}: refund one of them")
    if problems:
        return await _flag(request, firm, "; ".join(problems), deps=deps, actor=actor, now=now, state=state)

    note = ""
    if request.status in _LATE:
        note = f"paid after it was {request.status.value}: keep the payment or refund it"
    funding = state.funding if state.funding != "unknown" else ""
    rows = await PaymentRequest.filter(id=request.id, status__in=[*PAYABLE, *_LATE]).update(
        status=RequestStatus.PAID,
        paid_at=state.paid_at or now,
        fee_minor=received - request.amount_minor,
        total_minor=received,
        provider=state.provider,
        provider_ref=state.intent_id,
        provider_fee_minor=state.provider_fee_minor,
        application_fee_minor=state.application_fee_minor,
        settlement_currency=state.settlement_currency,
        exchange_rate=state.exchange_rate,
        settlement_net_minor=state.settlement_net_minor,
        card_funding=funding,
        flagged=note,
    )
    if rows == 0:
        return "", False
    request = await PaymentRequest.get(id=request.id)
    quote = quote_for_request(request, firm, config, funding=state.funding, province=state.province)
    # The rule that applied, in the client's language, for their receipt.
    w = words(request.lang)
    fee_text = rule_text(w, quote, config, firm) if quote.total_minor == received else w("receipt_no_fee")
    staff_email = await _staff_email(request)
    await outbox.enqueue(
        receipts.receipt(deps.composer, request, firm, fee_text=fee_text, staff_email=staff_email, now=now),
        master_key=deps.master_key, kind="payment-receipt", now=now, request=request,
        notify_on_failure=staff_email,
    )
    await outbox.enqueue(
        receipts.paid_notice(deps.composer, request, firm, to=staff_email, now=now),
        master_key=deps.master_key, kind="payment-notice", now=now, request=request,
    )
    await events.record(
        now, actor, "request.paid", firm=firm, request=request, provider=state.provider, intent=state.intent_id,
        amount=format_display(request.amount_minor, request.currency),
        fee=format_display(request.fee_minor or 0, request.currency),
        total=format_display(received, request.currency), funding=state.funding, province=state.province or "",
        fee_rule=quote.rule if quote.total_minor == received else "none", late=bool(note),
    )
    return f"paid R{request.id}", True


async def _flag(request: PaymentRequest, firm: Firm, problem: str, *, deps: Services, actor: str, now: datetime,
                state: PaymentState) -> tuple[str, bool]:
    rows = await PaymentRequest.filter(id=request.id, flagged="").update(flagged=problem[:300])
    await events.record(now, actor, "request.payment_flagged", firm=firm, request=request,
                        intent=state.intent_id, problem=problem)
    log.warning("R%s flagged: %s", request.id, problem)
    if not rows:
        return f"flagged R{request.id} again", False
    staff_email = await _staff_email(request)
    await outbox.enqueue(
        receipts.flag_notice(deps.composer, request, firm, to=staff_email, problem=problem, now=now),
        master_key=deps.master_key, kind="payment-flagged", now=now, request=request,
    )
    return f"flagged R{request.id}", True


async def _failed(request: PaymentRequest, firm: Firm, state: PaymentState, *, actor: str, now: datetime) -> str:
    rows = await PaymentRequest.filter(id=request.id, status__in=list(PAYABLE)).update(status=RequestStatus.FAILED)
    if not rows:
        return ""
    await events.record(now, actor, "request.payment_failed", firm=firm, request=request, intent=state.intent_id,
                        reason=state.failure_message[:200], funding=state.funding)
    return f"failed R{request.id} (still payable)"


async def _refunded(request: PaymentRequest, firm: Firm, state: PaymentState, *, deps: Services, actor: str,
                    now: datetime) -> tuple[str, bool]:
    before, after = request.refunded_minor, state.refunded_minor
    status = request.status
    if status in PAID_FAMILY and status is not RequestStatus.DISPUTED:
        total = request.total_minor or request.amount_minor
        status = RequestStatus.REFUNDED if after >= total else RequestStatus.PARTIALLY_REFUNDED
    rows = await PaymentRequest.filter(id=request.id, refunded_minor__lt=after).update(refunded_minor=after,
                                                                                      status=status)
    if not rows:
        return "", False
    request = await PaymentRequest.get(id=request.id)
    amount = after - before
    await events.record(now, actor, "request.refunded", firm=firm, request=request, intent=state.intent_id,
                        amount=format_display(amount, request.currency),
                        refunded=format_display(after, request.currency), status=request.status.value)
    if request.status not in PAID_FAMILY:
        # A refund of a payment we never accepted (a flagged one): no mail to the client.
        return f"refund recorded on R{request.id}", False
    staff_email = await _staff_email(request)
    await outbox.enqueue(
        receipts.refund_receipt(deps.composer, request, firm, amount_minor=amount, staff_email=staff_email, now=now),
        master_key=deps.master_key, kind="refund-receipt", now=now, request=request, notify_on_failure=staff_email,
    )
    await outbox.enqueue(
        receipts.refund_notice(deps.composer, request, firm, amount_minor=amount, to=staff_email, now=now),
        master_key=deps.master_key, kind="refund-notice", now=now, request=request,
    )
    return f"{request.status.value} R{request.id}", True


async def _disputed(request: PaymentRequest, firm: Firm, dispute: DisputeInfo | None, *, deps: Services, actor: str,
                    now: datetime) -> tuple[str, bool]:
    paid = [RequestStatus.PAID, RequestStatus.PARTIALLY_REFUNDED, RequestStatus.REFUNDED]
    rows = await PaymentRequest.filter(id=request.id, status__in=paid).update(status=RequestStatus.DISPUTED)
    if not rows:
        return "", False
    request = await PaymentRequest.get(id=request.id)
    await events.record(now, actor, "request.disputed", firm=firm, request=request,
                        dispute=dispute.dispute_id if dispute else "", reason=dispute.reason if dispute else "")
    staff_email = await _staff_email(request)
    await outbox.enqueue(
        receipts.dispute_notice(deps.composer, request, firm, to=staff_email,
                                reason=dispute.reason if dispute else "", due_by=dispute.due_by if dispute else None,
                                now=now),
        master_key=deps.master_key, kind="dispute-notice", now=now, request=request,
    )
    return f"disputed R{request.id}", True


async def record_deposit(firm: Firm, intent_ids: list[str], arrival: date, *, payout_id: str, actor: str,
                         now: datetime) -> str:
    """A payout reached the firm's bank: its date on the requests it settles."""
    if not intent_ids:
        return f"payout {payout_id}: no requests of ours in it"
    rows = await PaymentRequest.filter(firm_id=firm.id, provider="stripe", provider_ref__in=intent_ids).update(
        deposit_date=arrival)
    await events.record(now, actor, "payout.paid", firm=firm, payout=payout_id, arrival=arrival.isoformat(),
                        requests=rows)
    return f"payout {payout_id}: deposit date {arrival.isoformat()} on {rows} request(s)"


async def _staff_email(request: PaymentRequest) -> str:
    if request.staff_id is not None:
        staff = await Staff.get_or_none(id=request.staff_id)
        if staff is not None:
            return staff.email
    return request.sender


# -- what the pages and commands call --------------------------------------------------


async def pay(request: PaymentRequest, attempt: PayAttempt, provider: PaymentProvider, deps: Services) -> ConfirmOutcome:
    """The pay page's Pay button: confirm with the provider, then apply
    what it reports at once (the webhook that follows changes nothing).
    A secure message (kind message) is never paid."""
    if request.kind is RequestKind.MESSAGE:
        raise NotPayable("a secure message has nothing to pay")
    try:
        outcome = await provider.confirm(request, attempt)
    except AlreadyPaid:
        # Paid at the provider while we heard nothing yet: catch up, then say so.
        await reconcile(request, provider, deps)
        raise
    if outcome.state is not None:
        await apply_in_transaction(outcome.state, deps=deps, config=provider.config, actor=request.client_email)
    return outcome


async def reconcile(request: PaymentRequest, provider: PaymentProvider, deps: Services) -> PaymentRequest:
    """The return page: when no webhook has arrived yet, ask the provider
    itself and apply its answer. Returns the request as it now stands."""
    if request.provider == provider.name and request.provider_ref and request.status not in PAID_FAMILY:
        state = await provider.retrieve(request)
        if state is not None:
            await apply_in_transaction(state, deps=deps, config=provider.config, actor=f"{provider.name} (return)")
    return await PaymentRequest.get(id=request.id)


async def refund(request: PaymentRequest, provider: PaymentProvider, deps: Services, *, actor: str,
                 amount_minor: int | None = None) -> RefundResult:
    """Refund through the provider (``refund INVOICE [AMOUNT]``) and apply it."""
    if request.provider and request.provider != provider.name:
        raise NotRefundable(f"This request was paid through {request.provider}, which is not the provider now in use.")
    result = await provider.refund(request, amount_minor)
    now = deps.clock()
    async with in_transaction():
        await events.record(now, actor, "request.refund_requested", request=request,
                            amount=format_display(result.amount_minor, request.currency), refund=result.refund_id)
        applied = await apply_state(result.state, deps=deps, config=provider.config, actor=actor, now=now) \
            if result.state is not None else Applied("")
    if applied.mail:
        deps.outbox_wake.set()
    return result
