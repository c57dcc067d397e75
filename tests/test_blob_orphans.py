"""Sealed objects that a crash left named by no row are swept once a day
old (gateway/documents/orphans.py), in either store; those of committed
requests, and those of a request being written right now in another
process, stay.

The crash is real: a runner in a process of its own (tests/held_runner.py)
puts a request's files into the store and is killed (kill -9) while it
waits for the database's write lock, which this test holds: exactly
between the put and the commit."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator

import pytest
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.blobs import BlobStore, open_store
from gateway.core import db, writeturns
from gateway.core.clock import system_clock
from gateway.core.datadir import sqlite_path
from gateway.core.models import InboundMessage, InboundStatus, PaymentRequest, SealedFile
from gateway.core.paths import TEMPLATES_DIR
from gateway.deps import Deps
from gateway.documents import orphans
from gateway.inbound.runner import QueueRunner
from gateway.outbound.compose import Composer
from gateway.core.settings import load
from gateway.service import prepare, running
from tests.conftest import make_settings, request_mail
from tests.test_flow import PDF
from tests.test_runner import queue

pytest_plugins = ["tests.s3_support"]

ROOT = Path(__file__).resolve().parent.parent
# Long enough that no message a killed runner held is claimed again while
# the test runs: each runner here takes the message it was meant to.
LEASE_SECONDS = 600


@pytest.fixture(params=["files", "s3"])
def options(request, tmp_path: Path) -> dict:
    """settings.load's options for the test's gateway and the runners."""
    extra = request.getfixturevalue("s3_options") if request.param == "s3" else {}
    settings = make_settings(tmp_path, lease_seconds=LEASE_SECONDS, **extra)
    database = {"database_url": settings.database_url} if settings.database_url else {}
    return {"data_dir": str(settings.data_dir), "demo": True, "lease_seconds": LEASE_SECONDS, **database, **extra}


class HeldRunner:
    """tests/held_runner.py: claims the next message, then waits to be let go."""

    def __init__(self, options: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.held_runner", json.dumps(options)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    async def claimed(self) -> str:
        line = await asyncio.to_thread(self.process.stdout.readline)
        assert line.startswith("claimed "), f"the runner said {line!r} (exit {self.process.poll()})"
        return line.split()[1]

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    async def done(self) -> None:
        line = await asyncio.to_thread(self.process.stdout.readline)
        assert line == "done\n", f"the runner said {line!r}"
        assert await asyncio.to_thread(self.process.wait, 60) == 0

    def kill(self) -> None:
        self.process.kill()  # SIGKILL
        self.process.wait(30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            pipe.close()


@contextlib.asynccontextmanager
async def writes_held(settings) -> AsyncIterator[None]:
    """No request can commit meanwhile: on SQLite the write turn is held (a
    request's write takes it before its transaction: core/writeturns.py),
    on PostgreSQL the sealed files' table is locked against inserts (claims
    do not touch it)."""
    path = sqlite_path(settings.database)
    if path is not None:
        turns = writeturns.open_turns(path)
        try:
            fcntl.flock(turns, fcntl.LOCK_EX)  # as another process's writer holds it
            yield
        finally:
            os.close(turns)
        return
    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with in_transaction() as connection:
            await connection.execute_script("LOCK TABLE sealed_file IN EXCLUSIVE MODE")
            held.set()
            await release.wait()

    holding = asyncio.ensure_future(hold())
    await held.wait()
    try:
        yield
    finally:
        release.set()
        await holding


async def names(store: BlobStore) -> set[str]:
    return {name async for batch in store.listed() for name, _ in batch}


async def stored_by(store: BlobStore, before: set[str], count: int, runner: HeldRunner) -> set[str]:
    """The ``count`` objects the runner puts (beyond ``before``), once all are in the store."""
    while True:
        new = await names(store) - before
        if len(new) >= count:
            assert len(new) == count, new
            return new
        assert runner.process.poll() is None, "the runner ended before its put"
        await asyncio.sleep(0.02)


async def test_a_crash_between_put_and_commit_leaves_objects_the_sweep_deletes(options: dict) -> None:
    settings = load(options, environ={})
    await prepare(settings)
    master_key = vault.load_or_create_master_key(settings.master_key_path)

    def mail() -> bytes:  # a Message-ID of its own each time
        return request_mail("Invoice 7 $10.00 to=jane@client.example pw=Blue42",
                            attachments=[("invoice.pdf", "application/pdf", PDF)]).as_bytes()
    async with db.opened(settings.database):
        store = open_store(settings)
        deps = Deps(settings, master_key, system_clock, Composer(TEMPLATES_DIR / "email", hostname="gw.test"), blobs=store)
        runners: list[HeldRunner] = []
        try:
            # A request committed as usual: its two objects (the text, the PDF).
            await queue(mail(), master_key, deps.clock())
            assert await QueueRunner(deps).process_next()
            committed = await names(store)
            assert len(committed) == 2

            # A runner killed after its put, before its commit.
            await queue(mail(), master_key, deps.clock())
            runners.append(crashed := HeldRunner(options))
            crashed_id = await crashed.claimed()
            async with writes_held(settings):
                crashed.go()
                left = await stored_by(store, committed, 2, crashed)
                crashed.kill()
            assert await PaymentRequest.all().count() == 1
            assert not set(await SealedFile.all().values_list("blob", flat=True)) & left

            # Whatever was stored so far is a day old for the sweep below; what
            # is stored from the next whole second on (S3 keeps whole seconds) is not.
            marker = math.floor(time.time()) + 1
            await asyncio.sleep(marker - time.time())

            # A runner in the middle of its request (put done, commit waiting)
            # while the sweep runs in another process (this one).
            await queue(mail(), master_key, deps.clock())
            runners.append(writing := HeldRunner(options))
            writing_id = await writing.claimed()
            async with writes_held(settings):
                writing.go()
                in_flight = await stored_by(store, committed | left, 2, writing)
                swept = await orphans.sweep(store, now=marker + orphans.GRACE.total_seconds())
                assert swept == 2
                assert await names(store) == committed | in_flight
            await writing.done()

            # Every committed row's object is there and opens; the crashed
            # runner's message is still queued, to be made into a request again.
            assert await PaymentRequest.all().count() == 2
            assert set(await SealedFile.all().values_list("blob", flat=True)) == committed | in_flight
            assert await names(store) == committed | in_flight
            for name in committed | in_flight:
                assert [piece async for piece in store.read(name)]
            assert (await InboundMessage.get(id=writing_id)).status is InboundStatus.DONE
            assert (await InboundMessage.get(id=crashed_id)).status is InboundStatus.PROCESSING
            # Swept again: nothing more goes.
            assert await orphans.sweep(store, now=time.time() + 2 * orphans.GRACE.total_seconds()) == 0
        finally:
            for runner in runners:
                runner.close()
            deps.crypto_pool.shutdown()
            await store.close()


async def test_the_service_sweeps_at_start_what_a_crash_left_a_day_ago_but_not_newer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    await prepare(settings)
    store = open_store(settings)
    old, new, stranger = "f/ab/" + "0" * 32, "f/ab/" + "1" * 32, "f/ab/not-ours"
    for name in (old, new, stranger):
        await store.put(name, [b"sealed"])
    day_ago = time.time() - orphans.GRACE.total_seconds() - 60
    for name in (old, stranger):
        os.utime(settings.blobs_dir / name, (day_ago, day_ago))
    async with running(settings):
        deadline = time.monotonic() + 60
        while old in await names(store):  # housekeeping's first round
            assert time.monotonic() < deadline, "housekeeping did not sweep at start"
            await asyncio.sleep(0.02)
        assert await names(store) == {new, stranger}
