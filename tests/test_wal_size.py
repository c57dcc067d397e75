"""The SQLite write-ahead log keeps its usual size across checkpoints
(writing into it reuses its pages, where a log cut back at each restart
was grown again page by page), and what a burst grows beyond
db.WAL_SIZE_LIMIT is given back: on the ORM's connection and on the
admission's own (gateway/admission/intake.py)."""

from __future__ import annotations

import os

import pytest
from tortoise import connections

from gateway.admission import intake
from gateway.admission.intake import Verdict
from gateway.core import db
from gateway.core.directory import seed_demo
from tests.test_intake import arrival
from tests.test_runner import START

pytestmark = pytest.mark.no_database  # a SQLite file of its own, whatever the pass

MB = 1024 * 1024


async def _write(sql: str) -> None:
    await connections.get("default").execute_script(sql)


async def _grow_log_and_checkpoint(size: int) -> None:
    """One commit of ``size`` bytes into the log, then a checkpoint that
    copies all of it into the database (nothing else reads): the next
    commit starts the log over."""
    await _write("CREATE TABLE IF NOT EXISTS filler (data BLOB)")
    await _write(f"INSERT INTO filler VALUES (randomblob({size}))")
    await _write("DELETE FROM filler")
    await connections.get("default").execute_query("PRAGMA wal_checkpoint(PASSIVE)")


async def test_the_log_keeps_its_size_when_the_orm_starts_it_over(tmp_path):
    path = tmp_path / "t.db"
    async with db.opened(f"sqlite://{path}"):
        await _grow_log_and_checkpoint(2 * MB)
        grown = os.path.getsize(f"{path}-wal")
        await _write("INSERT INTO filler VALUES (x'00')")  # from the log's start again
        # Tortoise's own limit (16 KB) cut it back to a few pages here.
        assert os.path.getsize(f"{path}-wal") == grown


async def test_a_burst_beyond_the_limit_is_given_back_when_the_orm_starts_the_log_over(tmp_path):
    path = tmp_path / "t.db"
    async with db.opened(f"sqlite://{path}"):
        await _grow_log_and_checkpoint(db.WAL_SIZE_LIMIT + 4 * MB)
        assert os.path.getsize(f"{path}-wal") > db.WAL_SIZE_LIMIT
        await _write("INSERT INTO filler VALUES (x'00')")
        assert os.path.getsize(f"{path}-wal") == db.WAL_SIZE_LIMIT


async def test_a_burst_beyond_the_limit_is_given_back_when_the_intake_starts_the_log_over(tmp_path):
    path = tmp_path / "t.db"
    url = f"sqlite://{path}"
    async with db.opened(url):
        await seed_demo(START)
        taking = await intake.opened(url, 100, 1000)
        try:
            await _grow_log_and_checkpoint(db.WAL_SIZE_LIMIT + 4 * MB)
            assert await taking.admit(arrival()) is Verdict.ADMITTED  # its commit starts the log over
        finally:
            await taking.close()
        # Without a limit of its own the intake kept all of it, for good.
        assert os.path.getsize(f"{path}-wal") == db.WAL_SIZE_LIMIT


async def test_a_url_with_parameters_of_its_own_keeps_the_other_defaults(tmp_path):
    async with db.opened(f"sqlite://{tmp_path / 't.db'}?busy_timeout=200"):
        client = connections.get("default")
        assert (await client.execute_query("PRAGMA busy_timeout"))[1][0][0] == 200
        assert (await client.execute_query("PRAGMA journal_size_limit"))[1][0][0] == db.WAL_SIZE_LIMIT
        assert (await client.execute_query("PRAGMA synchronous"))[1][0][0] == 2  # FULL


def test_a_url_may_set_the_limit_itself():
    assert db.tortoise_url("sqlite:///data/ct.db?journal_size_limit=-1") == \
        "sqlite:///data/ct.db?journal_size_limit=-1&synchronous=FULL&busy_timeout=5000"
    assert db.tortoise_url("postgres://u@h/db") == "postgres://u@h/db"
