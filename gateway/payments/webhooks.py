"""Stripe webhooks, the dj-stripe way: store, verify, then process, idempotently.

1. :func:`receive` verifies the ``Stripe-Signature`` with the SDK's own
   check (``stripe.WebhookSignature.verify_header``, the one
   ``stripe.Webhook.construct_event`` runs) against each configured secret,
   and the timestamp against *our* clock (300 s tolerance, either way), so
   tests can hold time still; then it records the delivery
   (:class:`WebhookDelivery`). A verified delivery keeps its whole body and
   its event is stored once by its id (:class:`WebhookEvent`,
   insert-or-ignore). An unverified one is anybody's junk: it keeps only a
   digest of its body (SHA-256, size, the id and type it claims, why it was
   refused), only while the sender is within its allowance (the caller
   says: a per-address limit, see web_routes.py), and housekeeping forgets
   it after :data:`UNVERIFIED_KEEP`; it is never processed and never touches
   a WebhookEvent row (a forged body could otherwise claim a real event's id
   first). With no signing secret configured nothing is stored at all: no
   delivery can be genuine.
2. :func:`process` handles a verified event: the network part first
   (re-reading the PaymentIntent from Stripe, outside any transaction, so a
   slow Stripe never holds the database), then one ``in_transaction()`` that
   claims the event row (``UPDATE ... SET processed_at WHERE id = ? AND
   processed_at IS NULL``) and applies the change. A duplicate, or a second
   delivery racing the first, finds the row claimed and changes nothing; a
   failure rolls the claim back, we answer 500 and Stripe retries.

Events are notifications, the PaymentIntent is the truth: every payment
event re-reads its PaymentIntent and applies the snapshot through
:mod:`gateway.payments.ledger`, whose rules only move forward. So events
may arrive twice, late or shuffled (``payment_failed`` after ``succeeded``)
and the request still ends where Stripe's own state says, with one paid
transition, one receipt and one notice.

Handled: ``payment_intent.succeeded`` / ``.payment_failed`` /
``.processing`` / ``.canceled``, ``charge.succeeded``, ``charge.refunded``,
``charge.refund.updated``, ``charge.dispute.created``, ``payout.paid``,
``account.updated``. Anything else is stored and marked ignored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Protocol, Sequence

import stripe
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from gateway.core.models import Firm, PaymentRequest
from gateway.payments import connect, ledger
from gateway.payments.ledger import Services
from gateway.payments.models import WebhookDelivery, WebhookEvent
from gateway.payments.provider import PaymentState, ProviderError
from gateway.payments.stripe_objects import payout_arrival

log = logging.getLogger("clienttrack.payments.webhooks")

TOLERANCE_SECONDS = 300
# Stripe's events are a few KiB; refuse anything absurd before storing it.
MAX_BODY_BYTES = 1024 * 1024
# How long the digest of an unverified delivery is kept (housekeeping).
UNVERIFIED_KEEP = timedelta(days=7)
# What an unverified delivery may claim, as stored (attacker-chosen text).
_CLAIM_CHARS = 64


@dataclass(frozen=True)
class Result:
    """What happened to one delivery, and the HTTP status to answer Stripe."""

    status: int
    outcome: str
    event_id: str = ""
    event_type: str = ""
    verified: bool = False
    event: dict | None = None
    delivery_id: int | None = None

    @property
    def duplicate(self) -> bool:
        return self.outcome == "duplicate"


async def receive(
    raw_body: bytes,
    signature_header: str | None,
    *,
    secret: str | Sequence[str],
    now: datetime,
    tolerance: int = TOLERANCE_SECONDS,
    may_keep_unverified: Callable[[], bool] = lambda: True,
) -> Result:
    """Verify the delivery, record it, store its event once. Processes nothing.

    ``may_keep_unverified`` is asked only about a delivery that failed
    verification: False (the sender is over its allowance) answers 429 and
    stores nothing."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    secrets = [s for s in secrets if s and s.strip()]
    if not secrets:
        return Result(400, "not configured")
    event, outcome, detail = _verified_event(raw_body, signature_header, secrets, now, tolerance)
    if event is None:
        return await _refused(raw_body, outcome, detail, now, may_keep_unverified())

    event_id, event_type = event["id"][:255], event["type"][:100]
    delivery = await WebhookDelivery.create(received_at=now, body=raw_body.decode("utf-8"), body_size=len(raw_body),
                                            verified=True, event_id=event_id, event_type=event_type,
                                            outcome="verified")
    stored = await _store_event(event, raw_body.decode("utf-8"), now)
    if stored.processed_at is not None:
        await WebhookDelivery.filter(id=delivery.id).update(outcome="duplicate")
        return Result(200, "duplicate", event_id, event_type, True, event, delivery.id)
    return Result(200, "verified", event_id, event_type, True, event, delivery.id)


def _verified_event(raw_body: bytes, header: str | None, secrets: list[str], now: datetime,
                    tolerance: int) -> tuple[dict | None, str, str]:
    """(the event, "", "") when one of ``secrets`` signed the body recently,
    else (None, why, detail)."""
    if len(raw_body) > MAX_BODY_BYTES:
        return None, "too large", ""
    try:
        payload = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        return None, "malformed", "the body is not UTF-8"
    timestamp = _verified_timestamp(payload, header, secrets)
    if timestamp is None:
        return None, "bad signature", ""
    skew = abs(now.timestamp() - timestamp)
    if skew > tolerance:
        return None, "stale", f"signed at {timestamp}, {int(skew)} s from now (tolerance {tolerance} s)"
    try:
        event = json.loads(payload)
    except json.JSONDecodeError:
        return None, "malformed", "the body is not JSON"
    if not isinstance(event, dict) or event.get("object") != "event" or not isinstance(event.get("id"), str) \
            or not event["id"] or not isinstance(event.get("type"), str):
        return None, "malformed", "the body is not a Stripe event"
    return event, "", ""


async def _refused(raw_body: bytes, outcome: str, detail: str, now: datetime, keep: bool) -> Result:
    claimed_id, claimed_type = _claims(raw_body)
    claimed_id, claimed_type = claimed_id[:_CLAIM_CHARS], claimed_type[:_CLAIM_CHARS]
    if not keep:
        return Result(429, "rate limited", claimed_id, claimed_type)
    delivery = await WebhookDelivery.create(
        received_at=now, body="sha256:" + hashlib.sha256(raw_body).hexdigest(), body_size=len(raw_body),
        event_id=claimed_id, event_type=claimed_type, outcome=outcome, error=detail[:200])
    log.warning("webhook delivery %s refused: %s", delivery.id, outcome)
    return Result(400, outcome, claimed_id, claimed_type, False, None, delivery.id)


async def forget_unverified(now: datetime) -> int:
    """Housekeeping: the digests of unverified deliveries older than UNVERIFIED_KEEP."""
    return await WebhookDelivery.filter(verified=False, received_at__lt=now - UNVERIFIED_KEEP).delete()


def _claims(raw_body: bytes) -> tuple[str, str]:
    """The id and type a body claims (unverified: for the record only)."""
    try:
        data = json.loads(raw_body[:MAX_BODY_BYTES])
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("id") or ""), str(data.get("type") or "")


def _verified_timestamp(payload: str, header: str | None, secrets: list[str]) -> int | None:
    """The signed timestamp when one of ``secrets`` signed ``payload``;
    the timestamp itself is checked against our clock by the caller."""
    if not header:
        return None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
        except stripe.SignatureVerificationError:
            continue
        try:
            return int(next(p.split("=", 1)[1] for p in header.split(",") if p.strip().startswith("t=")))
        except (StopIteration, ValueError):
            return None
    return None


async def _store_event(event: dict, payload: str, now: datetime) -> WebhookEvent:
    existing = await WebhookEvent.get_or_none(id=event["id"])
    if existing is not None:
        return existing
    created = event.get("created")
    try:
        return await WebhookEvent.create(
            id=event["id"][:255],
            type=event["type"][:100],
            account=str(event.get("account") or "")[:64],
            livemode=bool(event.get("livemode")),
            created=datetime.fromtimestamp(int(created), timezone.utc) if isinstance(created, int) else None,
            payload=payload,
            received_at=now,
        )
    except IntegrityError:  # stored meanwhile by a concurrent delivery
        return await WebhookEvent.get(id=event["id"])


# -- processing ---------------------------------------------------------------------


@dataclass
class _Prepared:
    """What a handler fetched outside the transaction, and how to apply it."""

    apply: Callable[[datetime], Awaitable[ledger.Applied]]


Handler = Callable[[dict, Any, Services], Awaitable[_Prepared]]


async def process(event: dict, *, deps: Services, provider: Any, now: datetime | None = None) -> Result:
    """Apply one verified event, once. 200 when done (or a duplicate, or
    ignored), 500 when it failed and Stripe should retry."""
    now = now or deps.clock()
    event_id, event_type = event["id"], event["type"]
    handler = HANDLERS.get(event_type)
    try:
        prepared = await handler(event, provider, deps) if handler else None
    except Exception as exc:  # noqa: BLE001 - recorded, answered 500, retried by Stripe
        return await _failed(event_id, event_type, exc, event)

    try:
        async with in_transaction():
            claimed = await WebhookEvent.filter(id=event_id, processed_at__isnull=True).update(
                processed_at=now, attempts=F("attempts") + 1)
            if not claimed:
                return Result(200, "duplicate", event_id, event_type, True, event)
            applied = await prepared.apply(now) if prepared else ledger.Applied(f"ignored: {event_type} not handled")
            await WebhookEvent.filter(id=event_id).update(outcome=applied.outcome[:300], error="")
    except Exception as exc:  # noqa: BLE001
        return await _failed(event_id, event_type, exc, event)
    if applied.mail:
        deps.outbox_wake.set()
    log.info("webhook %s %s: %s", event_id, event_type, applied.outcome)
    return Result(200, "processed" if prepared else "ignored", event_id, event_type, True, event)


async def _failed(event_id: str, event_type: str, exc: Exception, event: dict) -> Result:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ProviderError):
        log.warning("webhook %s %s not processed, Stripe will retry: %s", event_id, event_type, detail)
    else:
        log.exception("webhook %s %s failed, Stripe will retry", event_id, event_type)
    await WebhookEvent.filter(id=event_id).update(error=detail[:2000], attempts=F("attempts") + 1)
    return Result(500, "error", event_id, event_type, True, event)


async def handle(
    raw_body: bytes,
    signature_header: str | None,
    *,
    secrets: Sequence[str],
    deps: Services,
    provider: Any,
    tolerance: int = TOLERANCE_SECONDS,
    may_keep_unverified: Callable[[], bool] = lambda: True,
) -> Result:
    """Everything POST /stripe/webhook does: receive, then process."""
    now = deps.clock()
    received = await receive(raw_body, signature_header, secret=secrets, now=now, tolerance=tolerance,
                             may_keep_unverified=may_keep_unverified)
    if received.status != 200 or received.duplicate or received.event is None:
        return received
    result = await process(received.event, deps=deps, provider=provider, now=now)
    await WebhookDelivery.filter(id=received.delivery_id).update(outcome=result.outcome)
    return Result(result.status, result.outcome, result.event_id, result.event_type, True, result.event,
                  received.delivery_id)


# -- handlers -----------------------------------------------------------------------


def _object(event: dict) -> dict:
    data = event.get("data") or {}
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


async def _account_for(event: dict, intent_id: str, provider_name: str) -> str | None:
    """The account to re-read a PaymentIntent on: the event's (Connect), else
    the firm's of the request that holds it. None: the event's account is not
    that firm's (never applied)."""
    event_account = str(event.get("account") or "")
    request = await PaymentRequest.filter(provider=provider_name, provider_ref=intent_id).first()
    if request is None:
        return event_account
    firm = await Firm.get(id=request.firm_id)
    if event_account and firm.stripe_account_id and event_account != firm.stripe_account_id:
        return None
    return event_account or firm.stripe_account_id


def _ignore(text: str) -> _Prepared:
    async def apply(now: datetime) -> ledger.Applied:
        return ledger.Applied(text)

    return _Prepared(apply)


def _apply_state(state: PaymentState, deps: Services, provider: Any, dispute: ledger.DisputeInfo | None = None) -> _Prepared:
    async def apply(now: datetime) -> ledger.Applied:
        return await ledger.apply_state(state, deps=deps, config=provider.config, actor="stripe", now=now,
                                        dispute=dispute)

    return _Prepared(apply)


async def _intent_event(event: dict, provider: Any, deps: Services, *, intent_id: str,
                        dispute: ledger.DisputeInfo | None = None) -> _Prepared:
    if not intent_id:
        return _ignore("ignored: no PaymentIntent in the event")
    account = await _account_for(event, intent_id, provider.name)
    if account is None:
        return _ignore(f"ignored: {intent_id} is on another account than its request's firm")
    state = await provider.retrieve_intent(intent_id, account)
    return _apply_state(state, deps, provider, dispute)


async def on_payment_intent(event: dict, provider: Any, deps: Services) -> _Prepared:
    return await _intent_event(event, provider, deps, intent_id=str(_object(event).get("id") or ""))


async def on_charge(event: dict, provider: Any, deps: Services) -> _Prepared:
    # A charge, or a refund (charge.refund.updated): both name their PaymentIntent.
    intent = _object(event).get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return await _intent_event(event, provider, deps, intent_id=str(intent or ""))


async def on_dispute(event: dict, provider: Any, deps: Services) -> _Prepared:
    obj = _object(event)
    due = (obj.get("evidence_details") or {}).get("due_by")
    dispute = ledger.DisputeInfo(
        dispute_id=str(obj.get("id") or ""),
        reason=str(obj.get("reason") or ""),
        due_by=datetime.fromtimestamp(int(due), timezone.utc) if isinstance(due, int) else None,
    )
    return await _intent_event(event, provider, deps, intent_id=str(obj.get("payment_intent") or ""),
                               dispute=dispute)


async def on_payout_paid(event: dict, provider: Any, deps: Services) -> _Prepared:
    payout = _object(event)
    account = str(event.get("account") or "")
    firm = await Firm.get_or_none(stripe_account_id=account) if account else None
    if firm is None:
        return _ignore("ignored: the payout is not on a firm's account")
    arrival = payout_arrival(payout)
    if arrival is None or payout.get("status") not in (None, "paid"):
        return _ignore("ignored: the payout has no arrival date")
    intents = await provider.payout_intents(str(payout.get("id") or ""), account)

    async def apply(now: datetime) -> ledger.Applied:
        text = await ledger.record_deposit(firm, intents, arrival, payout_id=str(payout.get("id") or ""),
                                           actor="stripe", now=now)
        return ledger.Applied(text)

    return _Prepared(apply)


class _WithSettings(Services, Protocol):
    # The running gateway's settings (gateway.deps.Deps has them): the pay page's public address.
    settings: Any


async def on_account_updated(event: dict, provider: Any, deps: _WithSettings) -> _Prepared:
    account_id = str(event.get("account") or _object(event).get("id") or "")
    firm = await Firm.get_or_none(stripe_account_id=account_id) if account_id else None
    if firm is None:
        return _ignore("ignored: not a firm's account")
    status = await provider.account_status(account_id)  # re-read: account events may come out of order
    if status.charges_enabled:
        # Verified after onboarding (or again): the wallets need the pay domain on this account too.
        await connect.register_wallet_domain(firm, provider, deps.settings.public_base_url)

    async def apply(now: datetime) -> ledger.Applied:
        await Firm.filter(id=firm.id).update(payments_ready=status.charges_enabled)
        return ledger.Applied(f"firm {firm.domain}: payments {'ready' if status.charges_enabled else 'not ready'}")

    return _Prepared(apply)


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "payment_intent.processing": on_payment_intent,
    "payment_intent.canceled": on_payment_intent,
    "charge.succeeded": on_charge,
    "charge.refunded": on_charge,
    "charge.refund.updated": on_charge,
    "charge.dispute.created": on_dispute,
    "payout.paid": on_payout_paid,
    "account.updated": on_account_updated,
}
