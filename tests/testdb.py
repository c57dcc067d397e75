"""Which database the suite runs on, and a fresh, empty one for each test.

- ``pytest``: SQLite, a file in the test's tmp_path.
- ``pytest --database=postgres``: a throwaway PostgreSQL cluster that this
  run starts on loopback (tests/pgcluster.py) and removes at the end.
- ``CLIENTTRACK_DATABASE_URL=postgres://USER@HOST:PORT/DB pytest``: the
  PostgreSQL server at that address (USER must be allowed to create
  databases). DB itself is left alone.

On PostgreSQL every test that asks for a database gets one of its own
(CREATE DATABASE, about 0.1 s), dropped when the test ends.

Tests that never open a database are marked ``no_database`` (a module's
``pytestmark``): the PostgreSQL pass leaves them out, as they would only
run the same code again. A test so marked that asks for a database
(make_settings, database_url, command_database) fails in either pass.
"""

from __future__ import annotations

import itertools
import os
import re
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

    def create(self) -> tuple[str, str]:
        name = f"clienttrack_test_{os.getpid()}_{next(self._names)}"
        self._run(f'CREATE DATABASE "{name}"')
        return name, self._url(name)

    def drop(self, name: str) -> None:
        self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def describe(self) -> str:
        if self._given:
            return f"PostgreSQL at {urlsplit(self._given).hostname}:{urlsplit(self._given).port or 5432} " \
                   "(CLIENTTRACK_DATABASE_URL)"
        return "PostgreSQL, a throwaway cluster on 127.0.0.1 started by this run"

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    def _url(self, name: str) -> str:
        if self._given:
            parts = urlsplit(self._given)
            return urlunsplit(parts._replace(path="/" + name))
        return self._started().url(name)

    def _run(self, statement: str) -> None:
        if self._given:
            _run_on(self._given, statement)
        else:
            self._started().sql(statement)

    def _started(self) -> Cluster:
        # Started on first use: a run of pure unit tests never pays for initdb.
        if self._cluster is None:
            self._cluster = Cluster().start()
        return self._cluster


def _run_on(url: str, statement: str) -> None:
    """One statement on a given server, through asyncpg in a loop of its own
    (callers are often inside the test's event loop)."""
    import asyncio
    import threading

    import asyncpg

    async def execute() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(failure, lambda: asyncio.run(execute())))
    thread.start()
    thread.join()
    if failure:
        raise ClusterError(f"{statement}: {failure[0]}")


def _capture(failure: list[BaseException], work) -> None:
    try:
        work()
    except BaseException as exc:  # handed to the calling thread
        failure.append(exc)


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
                name, url = self.server.create()
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
