"""Per request, whatever the address: five wrong passwords in a row lock it
(15 minutes, twice as long each time after), and at most 100 tries in an
hour. Kept in the database, so every web process counts the same tries.

A try is counted as wrong when it starts and forgiven if the password was
right: tries made at the same moment cannot all slip in before the first
of them is found wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from gateway.core import events, metrics
from gateway.core.models import PaymentRequest, UnlockGuard
from gateway.deps import Deps
from web import notify
from web.limits import Limits

HOUR = timedelta(hours=1)
# When every allowed try is already being checked: wait for their outcome.
SETTLING = timedelta(minutes=1)


@dataclass(frozen=True)
class Refused:
    until: datetime
    hourly: bool = False


@dataclass(frozen=True)
class Wrong:
    tries_left: int
    locked_until: datetime | None


async def _guard(request_id: int) -> UnlockGuard:
    """The row, locked until the transaction ends (SQLite: its transactions
    run one at a time anyway)."""
    return await UnlockGuard.select_for_update().get(request_id=request_id)


async def reserve(request_id: int, now: datetime, limits: Limits) -> Refused | None:
    """Count a try before deriving the key, or say until when none may start."""
    await UnlockGuard.get_or_create(request_id=request_id)
    async with in_transaction():
        guard = await _guard(request_id)
        if guard.locked_until is not None:
            if now < guard.locked_until:
                metrics.UNLOCKS.labels("locked").inc()
                return Refused(guard.locked_until)
            guard.locked_until, guard.failures = None, 0
        if guard.failures >= limits.max_failures:
            await guard.save()
            return Refused(now + SETTLING)
        if guard.window_start is None or now >= guard.window_start + HOUR:
            guard.window_start, guard.window_tries = now, 0
        if guard.window_tries >= limits.hourly_tries:
            await guard.save()
            return Refused(guard.window_start + HOUR, hourly=True)
        guard.window_tries += 1
        guard.failures += 1
        await guard.save()
    return None


async def record_wrong(deps: Deps, request: PaymentRequest, now: datetime, limits: Limits) -> Wrong:
    """The try was wrong: lock the request if it was one too many, and tell
    the staff member who sent it. ``request`` comes with firm and staff."""
    async with in_transaction():
        guard = await _guard(request.id)
        just_locked = guard.failures >= limits.max_failures and guard.locked_until is None
        if just_locked:
            guard.locks += 1
            guard.locked_until = now + limits.lock_duration(guard.locks)
            await guard.save()
            await notify.locked(deps, request, guard.failures, guard.locked_until, now)
            await events.record(
                now, request.client_email, "request.locked", firm=request.firm, request=request,
                lock=guard.locks, until=guard.locked_until.isoformat(),
            )
    metrics.UNLOCKS.labels("wrong").inc()
    if just_locked:
        metrics.LOCKOUTS.inc()
        deps.outbox_wake.set()
    locked_until = guard.locked_until if guard.locked_until and guard.locked_until > now else None
    return Wrong(max(0, limits.max_failures - guard.failures), locked_until)


async def release(request_id: int) -> None:
    """A counted try that never ran (the server was too busy): uncount it."""
    async with in_transaction():
        guard = await _guard(request_id)
        guard.failures = max(0, guard.failures - 1)
        guard.window_tries = max(0, guard.window_tries - 1)
        await guard.save()


async def record_right(request_id: int) -> None:
    """The right password ends the run of wrong ones and the doubling, and
    lifts a lock that a wrong try made while this one was being checked."""
    metrics.UNLOCKS.labels("unlocked").inc()
    await UnlockGuard.filter(request_id=request_id).update(failures=0, locks=0, locked_until=None)
