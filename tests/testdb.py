"""Which database the suite runs on, and a fresh, empty one for each test.

- ``pytest``: SQLite, a file in the test's tmp_path.
- ``pytest --database=postgres``: a throwaway PostgreSQL cluster that this
  run starts on loopback (tests/pgcluster.py) and removes at the end.
- ``CLIENTTRACK_DATABASE_URL=postgres://USER@HOST:PORT/DB pytest``: the
  PostgreSQL server at that address (USER must be allowed to create
  databases). DB itself is left alone.

On PostgreSQL every test that asks for a database gets one of its own,
dropped when the test ends: a copy (CREATE DATABASE ... TEMPLATE) of one
that `clienttrack db upgrade` made at the latest migration once a worker, as
the first open of an empty database would make it (making the schema in
each test's database cost twice the copy: ~0.13 s of CPU, ~700 tests). A
test marked ``empty_database`` (tests/test_migrations.py: a new database,
releases from before migrations) gets an empty one (on SQLite every
database starts empty).

Tests that never open one of the run's databases are marked
``no_database`` (a module's ``pytestmark``): those that open none, and
those that start a PostgreSQL cluster of their own whatever the pass
(tests/test_asyncpg_engine.py, the outage in tests/test_processes.py),
or a SQLite file of their own (tests/test_disk_full.py). The PostgreSQL
pass leaves them out, as they would only run the same code again. A test
so marked that asks for one of the run's databases (make_settings without
a database_url of its own, database_url, command_database) fails in
either pass.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.pgcluster import Cluster, ClusterError

SQLITE, POSTGRES = "sqlite", "postgres"


class PostgresServer:
    """A server to make test databases on: our own cluster, or one named."""

    def __init__(self, url: str | None = None) -> None:
        self._given = url
        self._cluster: Cluster | None = None
        self._names = itertools.count(1)
        self._template: str | None = None
        self._admin: AdminConnection | None = None

    def create(self, *, empty: bool = False) -> tuple[str, str]:
        name = f"clienttrack_test_{os.getpid()}_{next(self._names)}"
        template = "" if empty else f' TEMPLATE "{self._migrated()}"'
        self._run(f'CREATE DATABASE "{name}"{template}')
        return name, self._url(name)

    def _migrated(self) -> str:
        """The template: a database `clienttrack db upgrade` made at the
        latest migration (in a process of its own: the ORM's state here is
        the tests')."""
        if self._template is None:
            name = f"clienttrack_template_{os.getpid()}"
            self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._run(f'CREATE DATABASE "{name}"')
            command = str(Path(sys.executable).with_name("clienttrack"))
            with tempfile.TemporaryDirectory(prefix="clienttrack-template-") as data:
                done = subprocess.run([command, "db", "upgrade", "--data-dir", data, "--database-url",
                                       self._url(name)], capture_output=True, text=True, timeout=300,
                                      env={k: v for k, v in os.environ.items() if not k.startswith("CLIENTTRACK_")})
            if done.returncode != 0:
                raise ClusterError(f"clienttrack db upgrade (the template database) failed:\n{done.stdout}{done.stderr}")
            self._template = name
        return self._template

    def drop(self, name: str) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def describe(self) -> str:
        if self._given:
            return f"PostgreSQL at {urlsplit(self._given).hostname}:{urlsplit(self._given).port or 5432} " \
                   "(CLIENTTRACK_DATABASE_URL)"
        return "PostgreSQL, a throwaway cluster on 127.0.0.1 started by this run"

    def close(self) -> None:
        if self._given and self._template is not None:
            self.drop(self._template)
        self._template = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    def _url(self, name: str) -> str:
        if self._given:
            parts = urlsplit(self._given)
            return urlunsplit(parts._replace(path="/" + name))
        return self._started().url(name)

    def _run(self, statement: str) -> None:
        # One connection kept open for the run: CREATE and DROP DATABASE for
        # each test through a psql process and a new server backend apiece
        # cost ~25 ms of CPU each (~1,500 statements a PostgreSQL pass).
        if self._admin is None:
            self._admin = AdminConnection(self._given or self._started().url())
        self._admin.execute(statement)

    def _started(self) -> Cluster:
        # Started on first use: a run of pure unit tests never pays for initdb.
        if self._cluster is None:
            self._cluster = Cluster().start()
        return self._cluster


class AdminConnection:
    """One asyncpg connection to the server's ``postgres`` database, for
    CREATE and DROP DATABASE, in an event loop on a thread of its own
    (callers are often inside the test's event loop, or have none)."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="testdb-admin", daemon=True)
        self._thread.start()
        self._url = url
        self._connection = None

    def execute(self, statement: str) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._execute(statement), self._loop).result(timeout=120)
        except Exception as exc:
            raise ClusterError(f"{statement}: {exc}") from exc

    async def _execute(self, statement: str) -> None:
        import asyncpg

        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._url)
        await self._connection.execute(statement)

    def close(self) -> None:
        async def closing() -> None:
            if self._connection is not None and not self._connection.is_closed():
                await self._connection.close()

        try:
            asyncio.run_coroutine_threadsafe(closing(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


class TestDatabases:
    """The suite's choice of database, and the databases made for a test."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, kind: str, server: PostgresServer | None = None) -> None:
        self.kind = kind
        self.server = server
        self._by_folder: dict[Path, str] = {}
        self._made: list[str] = []
        # The test running now if it is marked no_database (conftest.py).
        self.refusing: str | None = None
        # Whether the test running now is marked empty_database (conftest.py).
        self.empty = False

    @classmethod
    def chosen(cls, option: str | None, environ: dict[str, str]) -> "TestDatabases":
        given = environ.get("CLIENTTRACK_DATABASE_URL", "")
        if option == POSTGRES:
            return cls(POSTGRES, PostgresServer())
        if option is None and re.match(r"(postgres|asyncpg)://", given):
            return cls(POSTGRES, PostgresServer(given))
        return cls(SQLITE)

    @property
    def postgres(self) -> bool:
        return self.kind == POSTGRES

    def url(self, folder: Path) -> str:
        """The test's database (one per test folder, made on first use)."""
        self.check_allowed()
        if folder not in self._by_folder:
            if self.server is None:
                self._by_folder[folder] = f"sqlite://{folder}/t.db"
            else:
                name, url = self.server.create(empty=self.empty)
                self._made.append(name)
                self._by_folder[folder] = url
        return self._by_folder[folder]

    def check_allowed(self) -> None:
        """A test marked no_database fails, in either pass, as soon as it asks
        for a database: the PostgreSQL pass leaves such tests out, so the
        mark must stay true."""
        if self.refusing is not None:
            raise AssertionError(f"{self.refusing} is marked no_database but asks for a database: "
                                 "remove the mark (the PostgreSQL pass then runs it too)")

    def end_test(self) -> None:
        """Drop what the test made (its processes are gone by now)."""
        made, self._made = self._made, []
        self._by_folder.clear()
        for name in made:
            self.server.drop(name)

    def describe(self) -> str:
        return self.server.describe() if self.server else "SQLite (a file in each test's folder)"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


# The run's choice, set by conftest.py when pytest starts.
current: TestDatabases = TestDatabases(SQLITE)
