"""The database's schema version, kept with Tortoise's own migrations.

The migration files are in gateway/migrations/ (0001 is the schema as it
was when migrations came in). Tortoise records the applied ones in its
table ``tortoise_migrations``. A database is *behind* when a migration on
disk is not recorded in it. An empty database (no tables at all) is simply
made at the latest migration: nothing in it can be lost.

`clienttrack db upgrade` applies what is pending, under a lock so that two
processes starting together do not both migrate: PostgreSQL's advisory
lock, or an exclusive lock on a file beside the SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

from gateway.core import sqlite_engine

APP = "models"
MODELS = ["gateway.core.models", "gateway.payments.models"]
MIGRATIONS = "gateway.migrations"
RECORD_TABLE = "tortoise_migrations"
# Any fixed number: the key of PostgreSQL's advisory lock for migrating.
PG_LOCK_KEY = 0x636C6E74  # "clnt"

UPGRADE_COMMAND = "clienttrack db upgrade"


class SchemaBehind(RuntimeError):
    """The database needs migrations this code has; the message names the command."""


def app_config() -> dict:
    return {"models": MODELS, "migrations": MIGRATIONS, "default_connection": "default"}


# PostgreSQL: no statement waits longer than this for its answer. A query
# sent as the server went down could otherwise wait forever, and the loop
# that sent it with it (seen once in the outage test: the outbox never came
# back). The pool is larger than Tortoise's 5: one process may run every role.
PG_COMMAND_TIMEOUT = 60.0
PG_POOL_SIZE = 10


def tortoise_config(url: str) -> dict:
    connection: str | dict = url
    scheme = urlsplit(url).scheme
    if scheme in ("postgres", "postgresql", "asyncpg"):
        connection = expand_db_url(url)
        connection["credentials"].setdefault("command_timeout", PG_COMMAND_TIMEOUT)
        connection["credentials"].setdefault("maxsize", PG_POOL_SIZE)
    elif scheme == "sqlite":
        connection = expand_db_url(url)
        connection["engine"] = sqlite_engine.ENGINE
    return {"connections": {"default": connection}, "apps": {APP: app_config()}}


@dataclass(frozen=True)
class Version:
    applied: tuple[str, ...]
    pending: tuple[str, ...]
    has_tables: bool  # any table of ours at all (an empty database has none)

    @property
    def empty(self) -> bool:
        return not self.has_tables and not self.applied

    @property
    def made_before_migrations(self) -> bool:
        """Tables made by generate_schemas, before migrations existed."""
        return self.has_tables and not self.applied

    def describe(self) -> str:
        at = self.applied[-1] if self.applied else "no migration"
        return f"the database is at {at}; this version needs {', '.join(self.pending)}"


def _executor() -> MigrationExecutor:
    return MigrationExecutor(connections.get("default"), {APP: app_config()})


async def version() -> Version:
    executor = _executor()
    steps = await executor.plan()
    applied = await executor.recorder.applied_migrations()
    return Version(
        applied=tuple(key.name for key in applied if key.app_label == APP),
        pending=tuple(step.migration.name for step in steps if not step.backward),
        has_tables=await _has_our_tables(),
    )


async def _has_our_tables() -> bool:
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        sql = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'firm'"
    else:
        sql = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'firm'"
    _, rows = await connection.execute_query(sql)
    return bool(rows and rows[0][0])


async def upgrade(database_url: str, *, fake_initial: bool = False) -> list[str]:
    """Apply the pending migrations, under the lock; what was done, by name.

    An empty database is made at the latest migration in one step (the
    models' tables, and every migration recorded): replaying each migration
    costs ten times as much, and tests/test_migrations.py checks that both
    ways give the same schema. ``fake_initial`` records 0001 without running
    it, for a database that generate_schemas made before migrations existed
    (from the version that brought migration 0001)."""
    async with _migration_lock(database_url):
        current = await version()
        if not current.pending:
            return []
        if current.empty:
            await Tortoise.generate_schemas(safe=False)
            executor = _executor()
            await executor.recorder.ensure_schema(executor._schema_editor(atomic=False))
            for name in current.pending:
                await executor.recorder.record_applied(APP, name)
            return [f"{name} (a new database)" for name in current.pending]
        done: list[str] = []
        if current.made_before_migrations:
            if not fake_initial:
                raise SchemaBehind(
                    "the database was made before migrations existed (it has tables but no "
                    f"{RECORD_TABLE}); if it was made by the version that brought migration "
                    f"{current.pending[0]}, run `{UPGRADE_COMMAND} --fake-initial`, which records "
                    "it without running it")
            await _executor().migrate([MigrationTarget(app_label=APP, name=current.pending[0])], fake=True)
            done.append(f"{current.pending[0]} (recorded, not run)")
            current = await version()
        await _executor().migrate()
        return done + list(current.pending)


async def ensure_current(database_url: str, *, upgrade_on_start: bool) -> None:
    """At start: make an empty database, upgrade one that is behind when the
    settings say so, and otherwise refuse to run on it (SchemaBehind)."""
    current = await version()
    if not current.pending:
        return
    if not (current.empty or upgrade_on_start):
        raise SchemaBehind(f"{current.describe()}: run `{UPGRADE_COMMAND}` first "
                           "(or set CLIENTTRACK_UPGRADE_ON_START=true to upgrade as it starts)")
    await upgrade(database_url)


async def model_changes() -> list:
    """What the models say beyond the last migration, as Tortoise's
    migration writers (none when the migrations are up to date). No
    database is read: the last migration's state comes from the files."""
    from tortoise.context import TortoiseContext
    from tortoise.migrations.autodetector import MigrationAutodetector

    async with TortoiseContext() as context:
        await context.init(config=tortoise_config("sqlite://:memory:"))
        return await MigrationAutodetector(context.apps, {APP: app_config()}).changes()


async def write_migration(name: str) -> list[Path]:
    """(For developers.) Write the migration from the last one's state to
    the models' as they are now, named NNNN_name; the files written."""
    from tortoise.migrations.writer import format_migration_name

    written = []
    for writer in await model_changes():
        writer.name = format_migration_name(int(writer.name.split("_", 1)[0]), name)
        written.append(writer.write())
    return written


@contextlib.asynccontextmanager
async def _migration_lock(database_url: str) -> AsyncIterator[None]:
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        # A session lock on one pooled connection, held while migrating.
        async with connection.acquire_connection() as raw:
            await raw.execute("SELECT pg_advisory_lock($1)", PG_LOCK_KEY)
            try:
                yield
            finally:
                await raw.execute("SELECT pg_advisory_unlock($1)", PG_LOCK_KEY)
        return
    path = _sqlite_lock_path(database_url)
    if path is None:  # an in-memory database: one process only
        yield
        return
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing lets go of the lock


def _sqlite_lock_path(database_url: str) -> Path | None:
    from urllib.parse import urlsplit
    parts = urlsplit(database_url)
    path = parts.netloc + parts.path
    if not path or path == ":memory:":
        return None
    return Path(path + ".migrate-lock")
