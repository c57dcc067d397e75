"""The database's schema version, kept with Tortoise's own migrations.

The migration files are in gateway/migrations/ (0001 is the schema of the
last release made before migrations, 3a04bb6). Tortoise records the applied
ones in its table ``tortoise_migrations``. A database is *behind* when a
migration on disk is not recorded in it. An empty database (no tables at
all) is simply made at the latest migration: nothing in it can be lost.

A database made by ``generate_schemas`` before migrations existed has
tables but no record. `upgrade` recognises its version by its tables and
columns (see `recognise`), records what it already has, and applies the
rest; it refuses one it does not recognise, naming what differs.

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
from tortoise.migrations.executor import MigrationExecutor

from gateway.core import asyncpg_engine, sqlite_engine

APP = "models"
MODELS = ["gateway.core.models", "gateway.payments.models"]
MIGRATIONS = "gateway.migrations"
RECORD_TABLE = "tortoise_migrations"
# Any fixed number: the key of PostgreSQL's advisory lock for migrating.
PG_LOCK_KEY = 0x636C6E74  # "clnt"

UPGRADE_COMMAND = "clienttrack db upgrade"


class SchemaBehind(RuntimeError):
    """The database needs migrations this code has; the message names the command."""


class SchemaUnknown(SchemaBehind):
    """A database without migration records whose tables and columns match
    no version we know: nothing is changed, the message names what differs."""


# The release before 3a04bb6, 2b1ef16, made the same tables less these
# (the client's side, admission counts and payments came after it). The
# release 3a04bb6 started on such a database added the tables (its start ran
# generate_schemas(safe=True), which makes missing tables, never columns) and
# then answered 451 to every mail: the columns are missing either way.
OLDER_RELEASE = "2b1ef16"
OLDER_RELEASE_LACKS_TABLES = frozenset(
    {"admission_count", "client_session", "unlock_guard", "payment_webhook_delivery", "payment_webhook_event"})
OLDER_RELEASE_LACKS_COLUMNS = {"inbound_message": ("sender", "firm_domain"), "payment_request": ("sealed_token",)}


def app_config() -> dict:
    return {"models": MODELS, "migrations": MIGRATIONS, "default_connection": "default"}


# PostgreSQL: no statement waits longer than this for its answer; a query
# sent as the server went down could otherwise wait forever, and the loop
# that sent it with it. (The loop that never came back in the outage test
# had another cause: see gateway/core/asyncpg_engine.py.) The pool is larger
# than Tortoise's 5: one process may run every role.
PG_COMMAND_TIMEOUT = 60.0
PG_POOL_SIZE = 10


def tortoise_config(url: str) -> dict:
    connection: str | dict = url
    scheme = urlsplit(url).scheme
    if scheme in ("postgres", "postgresql", "asyncpg"):
        connection = expand_db_url(url)
        connection["engine"] = asyncpg_engine.ENGINE
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
        if self.made_before_migrations:
            return ("the database was made before migrations existed (it has no "
                    f"{RECORD_TABLE}; `{UPGRADE_COMMAND}` recognises its version)")
        return f"the database is at {self.applied[-1]}; this version needs {', '.join(self.pending)}"


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


async def upgrade(database_url: str) -> list[str]:
    """Apply the pending migrations, under the lock; what was done, a line
    for each migration ("Applied NAME", "Recorded NAME: why").

    An empty database is made at the latest migration in one step (the
    models' tables, and every migration recorded): replaying each migration
    costs ten times as much, and tests/test_migrations.py checks that both
    ways give the same schema. A database made before migrations existed is
    recognised first (`recognise`): what it has is recorded, not run."""
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
            return [f"Applied {name} (a new database)" for name in current.pending]
        done: list[str] = []
        if current.made_before_migrations:
            done = await _adopt(await recognise())
            current = await version()
        await _executor().migrate()
        return done + [f"Applied {name}" for name in current.pending]


@dataclass(frozen=True)
class Recognised:
    """What a database made before migrations is: the migrations its tables
    and columns already hold, and whether it is the older release's."""

    holds: tuple[str, ...]  # migration names, in order
    older_release: bool = False


async def recognise() -> Recognised:
    """The version of a database that has our tables but no migration
    records, told by its tables and columns alone: the state after some
    migration (0001_initial: the release 3a04bb6), or the older release
    2b1ef16 (with or without the tables 3a04bb6 added at its start).
    Anything else raises SchemaUnknown naming what differs from 0001."""
    found = await _tables_and_columns()
    states = await _migration_states()
    for index, (_, expected) in enumerate(states):
        if found == expected:
            return Recognised(tuple(name for name, _ in states[:index + 1]))
    release = states[0][1]
    older = {table: columns - frozenset(OLDER_RELEASE_LACKS_COLUMNS.get(table, ()))
             for table, columns in release.items()}
    without_tables = {table: columns for table, columns in older.items() if table not in OLDER_RELEASE_LACKS_TABLES}
    if found in (older, without_tables):
        return Recognised((states[0][0],), older_release=True)
    raise SchemaUnknown(
        f"the database has tables but no {RECORD_TABLE}, and they match no version this code knows "
        f"(neither {states[0][0]}, the release 3a04bb6, nor a later migration, nor the release "
        f"{OLDER_RELEASE}); against {states[0][0]}: {_differences(found, release)}. Nothing was changed")


async def _adopt(recognised: Recognised) -> list[str]:
    """Record what a database made before migrations holds; the older
    release is first brought to 0001 (its missing tables made, its missing
    columns added with their defaults for the rows it has)."""
    done = []
    if recognised.older_release:
        await _older_release_to_initial()
        done.append(f"Applied {recognised.holds[0]}: the database was made by the release {OLDER_RELEASE}; "
                    "the tables and columns it lacked were added")
    else:
        done.extend(f"Recorded {name}: the database already had its tables and columns" for name in recognised.holds)
    executor = _executor()
    await executor.recorder.ensure_schema(executor._schema_editor(atomic=False))
    for name in recognised.holds:
        await executor.recorder.record_applied(APP, name)
    return done


async def _older_release_to_initial() -> None:
    """2b1ef16's database brought to 0001_initial, in one transaction: the
    tables it lacks made as 0001 makes them, the columns it lacks added
    (NOT NULL ones with their default as the database's, so its rows get
    it) and, on PostgreSQL, payment_request.status widened for the two
    statuses 3a04bb6 added (SQLite does not enforce a VARCHAR's length)."""
    from tortoise.transactions import in_transaction

    initial = (await _migration_state_objects())[0][1]
    found = await _tables_and_columns()
    models = {model._meta.db_table: model for model in initial.apps.apps[APP].values()}
    async with in_transaction("default") as client:
        # Atomic: SQLite's editor then runs each statement in this
        # transaction (its script mode would commit half-way).
        editor = _executor()._schema_editor(atomic=True)
        editor.client = client
        for table in sorted(OLDER_RELEASE_LACKS_TABLES - found.keys()):
            await editor.create_model(models[table])
        for table, columns in OLDER_RELEASE_LACKS_COLUMNS.items():
            model = models[table]
            for column in columns:
                field = model._meta.fields_map[column]
                if not field.null:
                    field.db_default = field.default
                await editor.add_field(model, column)
        if client.capabilities.dialect == "postgres":
            # The defaults were for the rows there; 0001 has none. (SQLite
            # cannot drop a default without copying the table: it keeps it.)
            for table, columns in OLDER_RELEASE_LACKS_COLUMNS.items():
                for column in columns:
                    await client.execute_script(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP DEFAULT')
            status = models["payment_request"]._meta.fields_map["status"]
            await client.execute_script(
                f'ALTER TABLE "payment_request" ALTER COLUMN "status" TYPE '
                f'{status.get_for_dialect("postgres", "SQL_TYPE")}')


def _differences(found: dict[str, frozenset[str]], expected: dict[str, frozenset[str]]) -> str:
    parts = []
    if missing := sorted(expected.keys() - found.keys()):
        parts.append("tables missing: " + ", ".join(missing))
    if extra := sorted(found.keys() - expected.keys()):
        parts.append("tables not ours: " + ", ".join(extra))
    for table in sorted(expected.keys() & found.keys()):
        if missing := sorted(expected[table] - found[table]):
            parts.append(f"{table} lacks " + ", ".join(missing))
        if extra := sorted(found[table] - expected[table]):
            parts.append(f"{table} has unknown " + ", ".join(extra))
    return "; ".join(parts)


async def _migration_state_objects() -> list:
    """(name, Tortoise's State after it) for each migration, in order."""
    from tortoise.migrations.schema_generator.state import State
    from tortoise.migrations.schema_generator.state_apps import StateApps

    executor = _executor()
    await executor.loader.build_graph()
    graph = executor.loader.graph
    state = State(models={}, apps=StateApps(default_connections={APP: "default"}))
    states = []
    for key in graph.forwards_plan(graph.leaf_nodes(APP)[-1]):
        await graph.nodes[key].apply(state, dry_run=True, schema_editor=None)
        states.append((key.name, state.clone()))
    return states


async def _migration_states() -> list[tuple[str, dict[str, frozenset[str]]]]:
    """(name, {table: its columns}) after each migration, in order."""
    return [(name, {model._meta.db_table: frozenset(model._meta.fields_db_projection.values())
                    for model in state.apps.apps[APP].values()})
            for name, state in await _migration_state_objects()]


async def _tables_and_columns() -> dict[str, frozenset[str]]:
    """The database's tables (but Tortoise's record) and their columns."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        _, tables = await connection.execute_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        found = {}
        for row in tables:
            table = row[0]
            _, columns = await connection.execute_query(f'PRAGMA table_info("{table}")')
            found[table] = frozenset(column[1] for column in columns)
    else:
        _, rows = await connection.execute_query(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'")
        columns: dict[str, set[str]] = {}
        for row in rows:
            columns.setdefault(row[0], set()).add(row[1])
        found = {table: frozenset(names) for table, names in columns.items()}
    found.pop(RECORD_TABLE, None)
    return found


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
