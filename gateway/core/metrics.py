"""Prometheus metrics (GET /metrics), one registry a process.

Counters are counted where things happen; the queues' depth and oldest
age are read from the database when /metrics is scraped (the queues are
shared by every process, so any process can say). Each process is scraped
on its own web port; a process without the web role has no /metrics.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from gateway.core.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus

REGISTRY = CollectorRegistry()

ADMISSION = Counter("clienttrack_smtp_messages_total", "Messages at DATA, by verdict: accepted, or the refusal's reason",
                    ["result"], registry=REGISTRY)
DELIVERIES = Counter("clienttrack_outbound_deliveries_total",
                     "Outbound deliveries, by result: sent, deferred (temporary failure) or failed (for good)",
                     ["result"], registry=REGISTRY)
UNLOCKS = Counter("clienttrack_unlock_attempts_total", "Password tries on the client's page, by result: "
                  "unlocked, wrong or locked (refused while locked out)", ["result"], registry=REGISTRY)
LOCKOUTS = Counter("clienttrack_lockouts_total", "Requests locked after too many wrong passwords", registry=REGISTRY)
PAYMENTS = Counter("clienttrack_payments_total", "Payment state changes applied, by the new state", ["state"],
                   registry=REGISTRY)
QUEUE_DEPTH = Gauge("clienttrack_queue_depth", "Messages waiting or being worked on, by queue", ["queue"],
                    registry=REGISTRY)
QUEUE_AGE = Gauge("clienttrack_queue_oldest_age_seconds", "Age of the oldest message waiting, by queue", ["queue"],
                  registry=REGISTRY)


async def queue_state(now: datetime) -> dict[str, tuple[int, float]]:
    """Each queue's depth and its oldest waiting message's age in seconds."""
    waiting_in = InboundMessage.filter(status__in=[InboundStatus.QUEUED, InboundStatus.PROCESSING])
    waiting_out = OutboundMessage.filter(status=OutboundStatus.QUEUED)
    oldest_in = await waiting_in.order_by("received_at").only("received_at").first()
    # An outbound message waits from when it is due (a deferred one is not late).
    oldest_out = await waiting_out.filter(next_attempt_at__lte=now).order_by("next_attempt_at").only(
        "next_attempt_at").first()
    return {
        "inbound": (await waiting_in.count(), _age(now, oldest_in.received_at if oldest_in else None)),
        "outbound": (await waiting_out.count(), _age(now, oldest_out.next_attempt_at if oldest_out else None)),
    }


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


async def exposition(now: datetime) -> bytes:
    for queue, (depth, age) in (await queue_state(now)).items():
        QUEUE_DEPTH.labels(queue).set(depth)
        QUEUE_AGE.labels(queue).set(age)
    return generate_latest(REGISTRY)
