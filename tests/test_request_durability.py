"""On SQLite, neither a request's own commit nor the outbox's claims are
flushed to disk by themselves: the outbox flushes the write-ahead log that
holds them, once a batch, before any mail of the batch leaves. So no client
or sender hears of a request that a power cut could still take back, and a
request costs no flush of its own inside the write lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core import rows, sqlite_threads
from gateway.outbound import outbox
from gateway.outbound.maildir import MaildirTransport
from gateway.service import running
from tests.conftest import make_settings, mails_to, request_mail, send, settled
from tests.test_flow import PDF, SUBJECT


def synchronous_at_each(statements: list[str]) -> list[tuple[str, str]]:
    """Each statement with the connection's synchronous setting it ran
    under (the connection starts FULL: checked by the caller)."""
    setting, ran = "FULL", []
    for sql in statements:
        if sql.startswith("PRAGMA synchronous = "):
            setting = {"NORMAL": "NORMAL", "1": "NORMAL", "FULL": "FULL", "2": "FULL"}[sql.rpartition(" ")[2]]
        ran.append((sql, setting))
    return ran


@pytest.mark.sqlite_only  # SQLite's synchronous setting and its log
async def test_a_requests_mails_leave_only_after_the_log_holding_the_request_is_flushed(tmp_path: Path, monkeypatch):
    steps: list[str] = []
    real_flush, real_write_many = outbox.flush_file, MaildirTransport.write_many

    def flush_file(path: Path) -> None:
        steps.append(f"flush {path.name}")
        real_flush(path)

    def write_many(self, messages):
        steps.append(f"write {len(messages)}")
        return real_write_many(self, messages)

    monkeypatch.setattr(outbox, "flush_file", flush_file)
    monkeypatch.setattr(MaildirTransport, "write_many", write_many)
    async with running(make_settings(tmp_path)) as gw:
        client = rows.sqlite_client()
        (setting,), = await rows.on_sqlite_thread(
            client, lambda connection: connection.execute("PRAGMA synchronous").fetchall())
        assert setting == 2  # FULL
        # The statements of the ORM's connection, and of the crypto threads'
        # own (sqlite_threads.py: a request's write is made there), apart: each
        # connection has its own synchronous setting.
        statements: list[str] = []
        own: list[list[str]] = []
        connect = sqlite_threads.connect

        def traced(path, pragmas):
            connection = connect(path, pragmas)
            assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL, as the ORM's
            own.append([])
            connection.set_trace_callback(own[-1].append)
            return connection

        monkeypatch.setattr(sqlite_threads, "connect", traced)
        await rows.on_sqlite_thread(client, lambda connection: connection.set_trace_callback(statements.append))
        try:
            await send(gw, request_mail(SUBJECT, attachments=[("invoice-1042.pdf", "application/pdf", PDF)]))
            await settled()
        finally:
            await rows.on_sqlite_thread(client, lambda connection: connection.set_trace_callback(None))
        assert len(mails_to(gw, "jane@client.example")) == 1

    [ran] = [ran for ran in map(synchronous_at_each, [statements, *own])
             if any(sql.startswith('INSERT INTO "payment_request"') for sql, _ in ran)]
    request = next(i for i, (sql, _) in enumerate(ran) if sql.startswith('INSERT INTO "payment_request"'))
    commit = next(i for i in range(request, len(ran)) if ran[i][0] == "COMMIT")
    assert ran[commit][1] == "NORMAL"  # the request's commit: no flush of its own
    # Every batch of mail written only after the log was flushed.
    assert steps and steps[0] == "flush clienttrack.db-wal"
    assert all(steps[i - 1] == "flush clienttrack.db-wal" for i, step in enumerate(steps) if step.startswith("write"))
