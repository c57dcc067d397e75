"""The event log: who did what, when. Callers never pass secrets in detail."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from gateway.core import rows
from gateway.core.models import Event, Firm, PaymentRequest

log = logging.getLogger("clienttrack.events")


async def record(
    at: datetime,
    actor: str,
    action: str,
    *,
    firm: Firm | None = None,
    request: PaymentRequest | None = None,
    **detail: Any,
) -> Event:
    log.info("%s %s %s", actor, action, " ".join(f"{k}={v}" for k, v in detail.items()))
    return await Event.create(at=at, actor=actor, action=action, firm=firm, request=request, detail=detail)


def entry(at: datetime, actor: str, action: str, *, firm: Firm | None = None, request_id: int | None = None,
          **detail: Any) -> rows.New:
    """The Event record() would save, as rows.New (logged as record() logs
    it), for a caller that writes its rows itself (gateway/core/rows.py)."""
    log.info("%s %s %s", actor, action, " ".join(f"{k}={v}" for k, v in detail.items()))
    return rows.New(Event, {"at": at, "actor": actor, "action": action, "firm_id": firm.id if firm is not None else None,
                            "request_id": request_id, "detail": detail})
