"""A signed message acts once: the Message-IDs a firm's gateway accepted.

Admission records each signed message's Message-ID (its digest) in the
transaction that queues it (intake.py), and refuses a message whose
Message-ID the firm already accepted, however it arrives (as it was, or
re-headed: the Message-ID is signed, so a copy cannot change it). The
digests are kept for twice the freshness window: a message older than the
window is refused by its Date anyway (freshness.py), so nothing older needs
remembering.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from gateway.admission.freshness import FUTURE_SKEW
from gateway.core.models import AcceptedMessageId


def digest(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().encode("utf-8", "surrogateescape")).hexdigest()


def keep_for(max_age: timedelta) -> timedelta:
    return 2 * max_age + FUTURE_SKEW


async def forget(now: datetime, max_age: timedelta) -> int:
    """Housekeeping: the Message-IDs no fresh message can carry any more."""
    return await AcceptedMessageId.filter(accepted_at__lt=now - keep_for(max_age)).delete()
