"""Connections of our own to the ORM's SQLite file, one a thread
(gateway/core/sqlite_threads.py): each thread keeps its own, with the ORM
connection's settings, sees what the ORM commits and the ORM what it
commits, follows the ORM to another file, and all close together."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from tortoise.exceptions import IntegrityError, OperationalError

from gateway.core import db, rows, sqlite_threads

pytestmark = pytest.mark.no_database  # SQLite files of their own, whatever the pass


async def table_of(client, *values: str) -> None:
    """A table of our own (x, unique) with ``values``, written through the ORM's connection."""
    await client.execute_script("CREATE TABLE t (x TEXT UNIQUE)")
    for value in values:
        await client.execute_query("INSERT INTO t (x) VALUES (?)", [value])


def pragmas(connection) -> tuple:
    return tuple(connection.execute(f"PRAGMA {name}").fetchone()[0]
                 for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"))


async def test_each_thread_has_its_own_connection_with_the_orms_settings_and_sees_its_commits(tmp_path):
    async with db.opened(f"sqlite://{tmp_path / 'a.db'}?busy_timeout=1234"):
        client = sqlite_threads.file_client()
        orm = await rows.on_sqlite_thread(client, pragmas)
        assert orm == ("wal", 2, 1234, 1)
        await table_of(client, "A")
        connections = sqlite_threads.ThreadConnections()
        with ThreadPoolExecutor(2) as pool:
            barrier = threading.Barrier(2)  # both threads at once: two threads, not one twice

            def on_thread(_):
                barrier.wait()
                first, again = connections.get(client), connections.get(client)
                assert first is again
                return first

            mine = list(pool.map(on_thread, range(2)))
            assert mine[0] is not mine[1]
            assert [pragmas(connection) for connection in mine] == [orm, orm]
            assert mine[0].execute("SELECT x FROM t").fetchall() == [("A",)]
            pool.submit(connections.run, client, lambda connection: connection.execute(
                "UPDATE t SET x = 'B'")).result()
        assert (await client.execute_query("SELECT x FROM t"))[1][0]["x"] == "B"
        connections.close()
        for connection in mine:
            with pytest.raises(Exception, match="closed"):
                connection.execute("SELECT 1")


async def test_overrides_change_only_their_own_connections(tmp_path):
    async with db.opened(f"sqlite://{tmp_path / 'a.db'}"):
        client = sqlite_threads.file_client()
        connections = sqlite_threads.ThreadConnections(synchronous="NORMAL")
        own = connections.get(client)
        assert own.execute("PRAGMA synchronous").fetchone()[0] == 1
        assert (await rows.on_sqlite_thread(client, pragmas))[1] == 2  # the ORM's stays FULL
        connections.close()


async def test_a_thread_follows_the_orm_to_another_file(tmp_path):
    connections = sqlite_threads.ThreadConnections()
    with ThreadPoolExecutor(1) as pool:
        seen = []
        for name in ("a", "b"):
            async with db.opened(f"sqlite://{tmp_path / name}.db"):
                client = sqlite_threads.file_client()
                await table_of(client, name)
                seen.append(pool.submit(connections.run, client, lambda connection: connection.execute(
                    "SELECT x FROM t").fetchall()).result())
    assert seen == [[("a",)], [("b",)]]
    connections.close()


async def test_sqlites_errors_come_out_as_the_orms(tmp_path):
    async with db.opened(f"sqlite://{tmp_path / 'a.db'}"):
        client = sqlite_threads.file_client()
        await table_of(client, "A")
        connections = sqlite_threads.ThreadConnections()
        with pytest.raises(IntegrityError):
            connections.run(client, lambda connection: connection.execute("INSERT INTO t (x) VALUES ('A')"))
        with pytest.raises(OperationalError):
            connections.run(client, lambda connection: connection.execute("SELECT * FROM no_such_table"))
        connections.close()


async def test_no_connection_of_our_own_to_a_database_in_memory(tmp_path):
    # Another connection to ":memory:" would be another, empty, database.
    async with db.opened("sqlite://:memory:"):
        assert sqlite_threads.file_client() is None


async def test_a_thread_of_its_own_runs_the_work_there_and_ends_with_its_connection(tmp_path):
    async with db.opened(f"sqlite://{tmp_path / 'a.db'}"):
        client = sqlite_threads.file_client()
        own = sqlite_threads.SqliteThread("own")
        ran = await own.run(client, lambda connection, n: (threading.current_thread().name, connection, n), 7)
        assert ran[0].startswith("own") and ran[0] != threading.current_thread().name and ran[2] == 7
        assert (await own.run(client, lambda connection: connection)) is ran[1]
        await own.close()
        with pytest.raises(Exception, match="closed"):
            ran[1].execute("SELECT 1")
        for thread in threading.enumerate():
            if thread.name == ran[0]:
                thread.join()  # it ends once the closing is done
