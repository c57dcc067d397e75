"""A full disk: the runners log it once and keep running, SMTP answers 452
to what it cannot store, and once there is space again the message taken
before is processed, once.

The disk is SQLite's own limit, PRAGMA max_page_count (a URL parameter
becomes a PRAGMA on the ORM's connection and on SMTP intake's): at the
file's size, anything that needs a new page fails with SQLITE_FULL,
"database or disk is full", as on a full disk. Space comes back for the
runners' connections only (the ORM's, and the runners' own: the crypto
threads', which write the requests, and the outbox's): the intake's keeps
its limit, so the refused message is not sent again here. About SQLite, so
on SQLite whatever database the run is for."""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import sqlite3
import threading

import pytest
from tortoise import connections

from gateway.core import sqlite_threads
from gateway.core.models import InboundMessage, InboundStatus
from gateway.service import running
from tests.conftest import CLIENT_THREADS, make_settings, mails_to, request_mail, send, settled

pytestmark = pytest.mark.no_database  # SQLite whatever the pass: the PostgreSQL pass would run the same again

ROOM_AGAIN = 1_073_741_823  # SQLite's default max_page_count


async def test_a_full_disk_is_logged_once_refused_452_and_what_was_taken_is_processed_once_space_returns(
        tmp_path, caplog, monkeypatch):
    path = tmp_path / "gateway.db"
    url = f"sqlite://{path}"
    # Taken while there was room: 250, queued (no runner here).
    async with running(make_settings(tmp_path, database_url=url, roles=("smtp", "web"))) as front:
        await send(front, request_mail("Invoice 7 $10.00 to=client7@client.example pw=Blue42"))
    assert await _inbound(path) == [InboundStatus.QUEUED]

    # The disk fills: no free page in the file, and none may be added.
    with sqlite3.connect(path) as database:
        database.execute("VACUUM")
        pages = database.execute("PRAGMA page_count").fetchone()[0]
    full = f"{url}?max_page_count={pages}&synchronous=FULL&busy_timeout=5000"
    runners = runners_own_connections(monkeypatch)
    with caplog.at_level(logging.INFO):
        async with running(make_settings(tmp_path, database_url=full)) as gw:
            loops = {name for name in gw.deps.health.loops if name.startswith("queue")}
            await _until(lambda: any("database or disk is full" in why for why in gw.deps.health.problems().values()))

            # Too big to store now: a temporary refusal, the sender keeps it.
            big = request_mail("Invoice 8 $10.00 to=client8@client.example pw=Blue42",
                               attachments=[("invoice.pdf", "application/pdf", os.urandom(200_000))])
            reply = await _reply(gw, big)
            assert reply[0] == 452 and b"storage" in reply[1], reply
            await asyncio.sleep(2)  # the loops retry meanwhile (backing off)
            assert mails_to(gw, "client7@client.example") == []

            # Space again: what was taken is processed, by the same loops.
            await connections.get("default").execute_script(f"PRAGMA max_page_count = {ROOM_AGAIN}")
            for connection in runners:
                connection.execute(f"PRAGMA max_page_count = {ROOM_AGAIN}")
            await settled(timeout=60)
            assert len(mails_to(gw, "client7@client.example")) == 1
            await _until(lambda: gw.deps.health.problems() == {})  # each loop, at its next try
            assert len(mails_to(gw, "staff@demo.localhost")) == 1  # the request confirmed, once
            # Handed back when the step failed, so the full disk did not count as an attempt.
            assert [m.attempts for m in await InboundMessage.all()] == [1]
            assert mails_to(gw, "client8@client.example") == []  # the sender has it, to send again

    health = [r.getMessage() for r in caplog.records if r.name == "clienttrack.health"]
    for loop in loops:
        failed = [m for m in health if m.startswith(f"{loop} cannot work")]
        assert len(failed) <= 1, failed  # once a streak, not at every retry
    cannot = [m for m in health if "cannot work" in m]
    assert cannot and all("database or disk is full" in m for m in cannot), health
    assert any("works again" in m for m in health), health
    assert sum("could not check or queue" in r.getMessage() for r in caplog.records) == 1  # the 452


def runners_own_connections(monkeypatch) -> list[sqlite3.Connection]:
    """The connections of their own the runners open from now on (the
    crypto threads' and the outbox's, gateway/core/sqlite_threads.py), not
    the intake's. (This SQLite is serialized: a PRAGMA from the test's
    thread waits for the statement the runner's thread may be running.)"""
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite_threads.connect

    def connect(path, pragmas):
        connection = real_connect(path, pragmas)
        if threading.current_thread().name != "intake":
            opened.append(connection)
        return connection

    monkeypatch.setattr(sqlite_threads, "connect", connect)
    return opened


async def _reply(gw, message) -> tuple[int, bytes]:
    def deliver() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as client:
            try:
                client.send_message(message)
            except smtplib.SMTPDataError as refused:
                return refused.smtp_code, refused.smtp_error
        return 250, b""
    return await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, deliver)


async def _until(condition, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def _inbound(path) -> list[str]:
    with sqlite3.connect(path) as database:
        return [row[0] for row in database.execute("SELECT status FROM inbound_message")]
