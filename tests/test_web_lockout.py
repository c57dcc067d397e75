"""The per-request lock and hourly cap, in the database."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.models import OutboundMessage, PaymentRequest, UnlockGuard
from tests.web_support import make_request
from web import lockout
from web.limits import Limits

pytest_plugins = ["tests.web_fixtures"]


async def loaded(made) -> PaymentRequest:
    return await PaymentRequest.filter(id=made.request.id).select_related("firm", "staff").get()


def test_each_lock_lasts_twice_the_last_up_to_a_ceiling():
    limits = Limits()
    assert [limits.lock_duration(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (15, 30, 60)]
    assert limits.lock_duration(11) == limits.lock_duration(500) == timedelta(minutes=15 * 1024)


async def test_at_most_the_hourly_tries_whatever_their_outcome(clocked, clock):
    made = await make_request(clocked.deps)
    limits = Limits(hourly_tries=3)
    for _ in range(3):
        assert await lockout.reserve(made.request.id, clock(), limits) is None
        await lockout.record_right(made.request.id)
    start = clock()
    clock.advance(minutes=59)
    refused = await lockout.reserve(made.request.id, clock(), limits)
    assert refused == lockout.Refused(start + timedelta(hours=1), hourly=True)
    clock.advance(minutes=1)
    assert await lockout.reserve(made.request.id, clock(), limits) is None


async def test_tries_at_the_same_moment_cannot_pass_the_limit_together(clocked, clock):
    made = await make_request(clocked.deps)
    limits = Limits()
    results = [await lockout.reserve(made.request.id, clock(), limits) for _ in range(8)]
    assert results[:5] == [None] * 5 and all(r is not None for r in results[5:])
    # The five under way fill the count: the first found wrong locks it, once.
    request = await loaded(made)
    for _ in range(3):
        wrong = await lockout.record_wrong(clocked.deps, request, clock(), limits)
        assert wrong == lockout.Wrong(0, clock() + timedelta(minutes=15))
    assert await OutboundMessage.filter(kind="request-locked").count() == 1
    # One of them right after all: the client is in, and the lock is lifted.
    await lockout.record_right(made.request.id)
    assert await lockout.reserve(made.request.id, clock(), limits) is None


async def test_a_try_that_never_ran_is_not_counted(clocked, clock):
    made = await make_request(clocked.deps)
    await lockout.reserve(made.request.id, clock(), Limits())
    await lockout.release(made.request.id)
    guard = await UnlockGuard.get(request_id=made.request.id)
    assert (guard.failures, guard.window_tries) == (0, 0)


async def test_the_right_password_starts_the_doubling_over(clocked, clock):
    made = await make_request(clocked.deps)
    request, limits = await loaded(made), Limits()
    for _ in range(5):
        await lockout.reserve(made.request.id, clock(), limits)
        wrong = await lockout.record_wrong(clocked.deps, request, clock(), limits)
    assert wrong.locked_until == clock() + timedelta(minutes=15)
    clock.advance(minutes=15)
    assert await lockout.reserve(made.request.id, clock(), limits) is None
    await lockout.record_right(made.request.id)
    for _ in range(5):
        await lockout.reserve(made.request.id, clock(), limits)
        wrong = await lockout.record_wrong(clocked.deps, request, clock(), limits)
    assert wrong.locked_until == clock() + timedelta(minutes=15)
