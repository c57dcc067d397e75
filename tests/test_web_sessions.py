"""Server-side sessions: the data key sealed under the master key, the id
only as a hash, closed when idle."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from starlette.datastructures import Headers
from starlette.requests import Request

from gateway import vault
from gateway.core.models import ClientSession
from tests.web_support import make_request
from web.sessions import Sessions

pytest_plugins = ["tests.web_fixtures"]


def browser(session_id: str = "") -> Request:
    headers = {"cookie": f"ct_session={session_id}"} if session_id else {}
    return Request({"type": "http", "method": "GET", "path": "/", "headers": Headers(headers).raw})


async def test_a_session_opens_the_data_key_for_its_request_only(clocked, clock):
    sessions = Sessions(clocked.deps.master_key, idle=timedelta(minutes=30), secure=False)
    made, other = await make_request(clocked.deps), await make_request(clocked.deps)
    key = vault.new_data_key()
    session_id = await sessions.start(browser(), made.request, key, clock())
    assert await sessions.data_key(browser(session_id), made.request, clock()) == key
    assert await sessions.data_key(browser(session_id), other.request, clock()) is None
    assert await sessions.data_key(browser("B" * 43), made.request, clock()) is None
    assert await sessions.data_key(browser("not-an-id"), made.request, clock()) is None

    row = await ClientSession.get()
    assert row.id_hash == hashlib.sha256(session_id.encode()).hexdigest()
    assert key not in row.sealed_key and session_id not in row.id_hash


async def test_idle_sessions_close_and_a_new_unlock_replaces_the_old_id(clocked, clock):
    sessions = Sessions(clocked.deps.master_key, idle=timedelta(minutes=30), secure=False)
    made = await make_request(clocked.deps)
    key = vault.new_data_key()
    first = await sessions.start(browser(), made.request, key, clock())
    second = await sessions.start(browser(first), made.request, key, clock())
    assert first != second
    assert await sessions.data_key(browser(first), made.request, clock()) is None
    clock.advance(minutes=30)
    assert await sessions.data_key(browser(second), made.request, clock()) is None
    assert await ClientSession.all().count() == 0


async def test_a_row_moved_to_another_session_does_not_open(clocked, clock):
    sessions = Sessions(clocked.deps.master_key, idle=timedelta(minutes=30), secure=False)
    made = await make_request(clocked.deps)
    first = await sessions.start(browser(), made.request, vault.new_data_key(), clock())
    second = await sessions.start(browser(), made.request, vault.new_data_key(), clock())
    rows = {r.id_hash: r for r in await ClientSession.all()}
    first_hash, second_hash = (hashlib.sha256(s.encode()).hexdigest() for s in (first, second))
    await ClientSession.filter(id_hash=second_hash).update(sealed_key=rows[first_hash].sealed_key)
    assert await sessions.data_key(browser(second), made.request, clock()) is None


async def test_ending_a_session_removes_it(clocked, clock):
    sessions = Sessions(clocked.deps.master_key, idle=timedelta(minutes=30), secure=True)
    assert sessions.cookie == "__Host-ct_session"
    made = await make_request(clocked.deps)
    session_id = await sessions.start(browser(), made.request, vault.new_data_key(), clock())
    await Sessions(clocked.deps.master_key, idle=timedelta(minutes=30), secure=False).end(browser(session_id))
    assert await ClientSession.all().count() == 0
