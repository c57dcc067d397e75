"""Rows written without the ORM's per-statement machinery, for the hot
paths (making a request, the outbox): the statements are the ORM's own
(its INSERT for the model, its conversion of each field to the database),
but a group of them runs as one function on SQLite's database thread, one
hand-off instead of one per statement (BEGIN, each INSERT, COMMIT), and
without building a query object for each. On PostgreSQL the same
statements go through the ORM's connection as they are.

Measured with bench/bench_end_to_end.py: the ORM's query building, model
saving and the hand-offs to aiosqlite's thread were about a sixth of the
event loop's time a request (docs in BENCHMARKS.md, issue 18)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from copy import deepcopy
from typing import Any, NamedTuple, TypeVar

from tortoise import Model, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError
from tortoise.fields.base import Field

from gateway.core import dbvalues, writeturns

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    counter = iter(range(1, sql.count("?") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def for_dialect(sql: str, name: str) -> str:
    return numbered(sql) if name == "postgres" else sql


class New(NamedTuple):
    """A row to insert, without the model's instance: the values of the
    fields given (a relation by its ``<name>_id``), the others at the
    model's defaults. Building an instance (its __init__ and __setattr__,
    a request's five rows) cost as much as converting its values."""
    model: type[Model]
    given: dict[str, Any]

    def made(self) -> Model:
        """The ORM's unsaved instance of the same row, for code that saves through the ORM."""
        return self.model(**self.given)


class Insert:
    """A model's INSERT as the ORM writes it (every column but the generated
    id), and each field's conversion to the database (gateway/core/dbvalues.py:
    the ORM's own, without its per-call dispatch for a value of the field's
    own type)."""

    def __init__(self, model: type[Model], client: BaseDBAsyncClient) -> None:
        executor = client.executor_class(model=model, db=client)
        self.model = model
        self.sql: str = executor.insert_query
        self.columns: list[str] = list(executor.regular_columns)
        self.fields: list[Field] = [model._meta.fields_map[name] for name in self.columns]
        self._defaults = [_default_of(field) for field in self.fields]
        self._to_db = [dbvalues.to_db(field) for field in self.fields]
        self._given_to_db = [dbvalues.given_to_db(field, model) for field in self.fields]

    def values(self, instance: Model, **overrides: Any) -> list:
        """The row of an unsaved ``instance`` (as Model.save would write it);
        ``overrides``: columns whose value is known only now (a foreign key)."""
        row = []
        for name, to_db in zip(self.columns, self._to_db):
            value = overrides[name] if name in overrides else getattr(instance, name)
            row.append(to_db(value, instance))
        return row

    def row(self, new: New) -> list:
        """The row ``new.made()`` would be saved as (values() of it), made
        without the instance: a field given is read as the instance reads
        it (to_python_value), the others take the default the instance
        would, and each is converted to the database as values() converts it.
        Not for a model with a field the instance sets itself at its save
        (auto_now, an async default: none of the gateway's)."""
        given = new.given
        row = []
        for name, field, default, given_to_db, to_db in zip(self.columns, self.fields, self._defaults,
                                                             self._given_to_db, self._to_db):
            if name in given:
                value = given[name]
                if value is None and not field.null:
                    raise ValueError(f"{name} is non nullable field, but null was passed")
                row.append(given_to_db(value))
            else:
                row.append(to_db(default(), self.model))
        return row


def _default_of(field: Field) -> Callable[[], Any]:
    """What Model.__init__ gives ``field`` when it is not given, as a function."""
    default = field.default
    if callable(default):
        return default
    if default is not None:
        return (lambda: default) if isinstance(default, (int, float, str, bool, bytes)) else (lambda: deepcopy(default))
    if field.has_db_default():
        value = field.get_db_default_value()
        return lambda: value
    return lambda: None


_INSERTS: dict[tuple[type[Model], str, type], Insert] = {}


def insert(model: type[Model], client: BaseDBAsyncClient) -> Insert:
    """``model``'s Insert for the client's database (made once a dialect)."""
    key = (model, client.capabilities.dialect, client.executor_class)
    found = _INSERTS.get(key)
    if found is None:
        found = _INSERTS[key] = Insert(model, client)
    return found


def sqlite_client(client: BaseDBAsyncClient | None = None):
    """The ORM's SQLite client when the database is SQLite, else None."""
    client = client or connections.get("default")
    return client if client.capabilities.dialect == "sqlite" else None


async def on_sqlite_thread(client, work: Callable[..., T], *args: Any) -> T:
    """``work(connection, *args)`` on the ORM's SQLite connection, in its
    thread, while no other statement of this process uses it (the client's
    lock, as each ORM statement and transaction takes). ``work`` begins and
    ends its transaction itself (the connection is in autocommit mode).
    SQLite's errors come out as the ORM's (IntegrityError, OperationalError),
    as they do from its statements."""
    async with client.acquire_connection() as connection:
        with orm_errors():
            return await connection._execute(work, connection._conn, *args)


@contextmanager
def orm_errors() -> Iterator[None]:
    """SQLite's errors inside raised as the ORM's (IntegrityError,
    OperationalError), as its statements raise them: for work on a
    connection of our own that callers handle as the ORM's."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(exc) from exc
    except sqlite3.OperationalError as exc:
        raise OperationalError(exc) from exc


def in_transaction(connection: sqlite3.Connection, work: Callable[..., T], *args: Any) -> T:
    """``work(connection, *args)`` between BEGIN IMMEDIATE and COMMIT (as
    gateway/core/sqlite_engine.py begins the ORM's transactions), rolled
    back if it raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection, *args)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # SQLite ends it itself on some errors ("database or disk is full")
            connection.execute("ROLLBACK")
        raise
    return result


@contextmanager
def unflushed(connection: sqlite3.Connection) -> Iterator[None]:
    """What commits inside is not flushed to disk by itself (synchronous
    NORMAL; in WAL mode the next FULL commit of any connection flushes it
    with its own): for a commit whose loss to a power cut loses nothing.
    The connection's setting is put back after."""
    with _pragma_while(connection, "synchronous", "NORMAL", str):
        yield


@contextmanager
def freed_unzeroed(connection: sqlite3.Connection) -> Iterator[None]:
    """Pages that statements inside free are not zeroed first (secure_delete
    FAST; this SQLite is built with SECURE_DELETE on, as Debian's is, which
    writes each freed page to the log once more, as zeros): only for
    statements whose freed pages hold nothing but what was sealed under the
    master key, or values the row they rewrite keeps. Every other statement
    keeps the connection's setting, put back after."""
    with _pragma_while(connection, "secure_delete", "FAST", _SECURE_DELETE.__getitem__):
        yield


_SECURE_DELETE = {0: "OFF", 1: "ON", 2: "FAST"}  # as the PRAGMA reads, as it is set (2 would set ON)


@contextmanager
def _pragma_while(connection: sqlite3.Connection, pragma: str, value: str,
                  as_set: Callable[[int], str]) -> Iterator[None]:
    """``pragma`` at ``value`` inside; the connection's setting, read
    before and written back as ``as_set`` spells it, after."""
    (setting,), = connection.execute(f"PRAGMA {pragma}").fetchall()
    connection.execute(f"PRAGMA {pragma} = {value}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA {pragma} = {as_set(setting)}")


async def execute_many(sql: str, params: list[list], *, flushed: bool = True, zero_freed: bool = True) -> None:
    """One statement (``?`` placeholders) for each parameter list, in one
    transaction: on SQLite one function on the database's thread, in this
    process's turn at the write lock (gateway/core/writeturns.py), with
    ``flushed=False`` its commit not flushed by itself (unflushed()), with
    ``zero_freed=False`` the pages it frees not zeroed (freed_unzeroed())."""
    client = connections.get("default")
    if client.capabilities.dialect == "sqlite":
        await on_sqlite_thread(client, writeturns.in_turn, _executemany_in_transaction, sql, params, flushed,
                               zero_freed)
    else:
        await client.execute_many(for_dialect(sql, client.capabilities.dialect), params)


def _executemany_in_transaction(connection: sqlite3.Connection, sql: str, params: list[list], flushed: bool,
                                zero_freed: bool) -> None:
    with nullcontext() if flushed else unflushed(connection), \
            nullcontext() if zero_freed else freed_unzeroed(connection):
        in_transaction(connection, lambda connection: connection.executemany(sql, params))
