"""Turns at a SQLite database's write lock, taken through the kernel: an
exclusive flock on a file beside the database, held from before BEGIN to
after COMMIT by every writer that takes part (the admission intakes of
every process, the inbound claims and a request's writes).

SQLite's own lock has no queue: a writer that finds it taken sleeps in
its busy handler (1, 2, 5, 10 ms... then tries again), so whoever takes
turns through the flock passes the lock straight on while the others
sleep. While mail was being accepted, the intakes of two front processes
committed back to back and each worker's database thread spent 28-45 % of
its time in those sleeps (bench_end_to_end's accept phase, 5 % after it):
every runner of the process waits behind its database thread.

A writer that does not take part still gets the lock as before, through
the busy handler."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def turns_path(database_path: str) -> str:
    """The file the writers of one SQLite database take turns on (flock)."""
    return f"{database_path}-intake"


def open_turns(database_path: str) -> int:
    """A descriptor of the turns file of that database, for turn(); each
    writer opens its own (flock's turns are an open file's, not a process's)."""
    return os.open(turns_path(database_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextmanager
def turn(turns: int) -> Iterator[None]:
    """The turn of the writer that opened ``turns``: waits for it (the
    kernel's queue), lets go of it after."""
    fcntl.flock(turns, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(turns, fcntl.LOCK_UN)


class _Turns:
    """A database thread's descriptor of its database's turns file, and the
    connection it is for: found and opened at the thread's first turn,
    closed when the thread ends (aiosqlite runs each connection on a thread
    of its own; a fork copies only the forking thread, never a database
    thread). Looking the database's path up (PRAGMA database_list) and
    opening and closing the file at every turn took ~20 us of the database
    thread's CPU a turn, four turns a request."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        path = next(row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main")
        # None for a database in memory: no other process writes it.
        self.turns = open_turns(path) if path else None

    def __del__(self) -> None:
        if self.turns is not None:
            os.close(self.turns)


_per_thread = threading.local()


@contextmanager
def taken(connection: sqlite3.Connection) -> Iterator[None]:
    """This process's turn at the write lock of ``connection``'s database
    (none for a database in memory), on the thread that runs
    ``connection``. Never taken by a thread that holds it already (an
    intake's thread)."""
    held = getattr(_per_thread, "turns", None)
    if held is None or held.connection is not connection:
        held = _per_thread.turns = _Turns(connection)
    if held.turns is None:
        yield
        return
    with turn(held.turns):
        yield


def in_turn(connection: sqlite3.Connection, work: Callable[..., T], *args: Any) -> T:
    """``work(connection, *args)`` in this process's turn (on the database's thread)."""
    with taken(connection):
        return work(connection, *args)
