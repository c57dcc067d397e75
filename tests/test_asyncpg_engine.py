"""PostgreSQL: a transaction that cannot begin or end leaves nothing behind
(gateway/core/asyncpg_engine.py).

Tortoise's own client left the failed transaction as the task's connection:
a runner loop is one long-lived task, so after a PostgreSQL restart it
never worked again. These tests go through a relay that cuts a connection
the moment the client next writes on it, so what fails is known, every
time; they use a cluster of their own on either run (the relay needs its
port)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from gateway.core import db
from gateway.core.models import InboundMessage
from tests.pgcluster import Cluster

# A cluster of their own on either pass: the PostgreSQL pass would run the same again.
pytestmark = pytest.mark.no_database


class Relay:
    """A TCP relay to a server on loopback. ``cut_at_next_write()``: the
    next bytes a client sends on any connection are not passed on, and
    that connection is cut both ways (the others go on)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self.cuts = 0
        self._cut_next = False
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> "Relay":
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._server.close()

    def cut_at_next_write(self) -> None:
        self._cut_next = True

    async def _relay(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target)

        def cut() -> None:
            client_out.transport.abort()
            server_out.transport.abort()

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, from_client: bool) -> None:
            try:
                while data := await source.read(65536):
                    if from_client and self._cut_next:
                        self._cut_next = False
                        self.cuts += 1
                        break
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                cut()

        await asyncio.gather(pipe(client_in, server_out, True), pipe(server_in, client_out, False))


@pytest.fixture(scope="module")
def cluster() -> "Cluster":
    with Cluster() as started:
        yield started


@pytest.fixture
async def through_relay(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Relay]:
    name = f"relay_{tmp_path.name}".lower().replace("-", "_")[:60]
    await asyncio.to_thread(cluster.create_database, name)
    try:
        async with Relay(cluster.port) as relay:
            async with db.opened(f"postgres://postgres@127.0.0.1:{relay.port}/{name}"):
                yield relay
    finally:
        await asyncio.to_thread(cluster.drop_database, name)


async def test_a_transaction_whose_begin_fails_leaves_the_task_its_own_connection(through_relay):
    base = connections.get("default")
    async with in_transaction() as connection:
        await connection.execute_query("SELECT 1")

    through_relay.cut_at_next_write()
    with pytest.raises(Exception):
        async with in_transaction() as connection:  # BEGIN is cut
            await connection.execute_query("SELECT 1")
    assert through_relay.cuts == 1

    assert connections.get("default") is base  # not the transaction that never began
    for _ in range(3):  # and the same task works again, in and out of transactions
        async with in_transaction() as connection:
            assert (await connection.execute_query("SELECT 41 + 1 AS answer"))[1][0]["answer"] == 42
        assert await InboundMessage.all().count() == 0
    pool = base._pool
    assert pool._queue.qsize() == pool.get_max_size()  # every place in the pool free again


async def test_a_transaction_cut_half_way_leaves_the_task_its_own_connection(through_relay):
    base = connections.get("default")
    with pytest.raises(Exception):
        async with in_transaction() as connection:
            await connection.execute_query("SELECT 1")
            through_relay.cut_at_next_write()
            await connection.execute_query("SELECT 2")  # cut: then the rollback fails too
    assert connections.get("default") is base
    async with in_transaction() as connection:
        await connection.execute_query("SELECT 1")
    pool = base._pool
    assert pool._queue.qsize() == pool.get_max_size()
