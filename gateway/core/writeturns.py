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
the busy handler.

The kernel lets go of a turn when its holder dies, but not when it hangs
(stopped, stuck in a disk write, in a debugger): every writer would wait
behind it for good, and with them every statement of their processes'
database threads (the web's reads too). So a turn is waited for at most
WAIT_MOST: past WARN_AFTER the wait is logged with who holds the turn
(its process id and command line, from /proc/locks), and past WAIT_MOST
the step fails with TurnNotGiven, a TimeoutError: an outage, as a
database that does not answer is (core/health.py outage). The intake
answers 451 (the sending server tries again), a runner hands its message
back and backs off, and the objects a request put are left to the orphan
sweep (documents/orphans.py). A turn that is free is taken at once
(flock LOCK_NB: the same one call as before); only a wait goes through a
thread of its own (Turns._waiter), as flock's wait itself has no time
limit. The admission intake waits in flock on its own thread instead and
its event loop keeps the limit (admission/intake.py): its contended turns
are most of all, and the waiter's hand-off cost each two context switches."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("clienttrack.writeturns")

# A turn is held for one transaction of a few statements (milliseconds; a
# flush of the log may take a second on a slow disk): a holder that keeps
# it this long has stopped.
WAIT_MOST = 30.0
WARN_AFTER = 5.0


class TurnNotGiven(TimeoutError):
    """Another process held the write turn longer than WAIT_MOST: this step
    fails, to be tried again, rather than wait for good."""


def turns_path(database_path: str) -> str:
    """The file the writers of one SQLite database take turns on (flock)."""
    return f"{database_path}-intake"


def open_turns(database_path: str) -> int:
    """A descriptor of the turns file of that database, for turn(); each
    writer opens its own (flock's turns are an open file's, not a process's)."""
    return os.open(turns_path(database_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class Turns:
    """One writer's open turns file (open_turns), whose turn() waits at most
    ``wait_most`` seconds (WAIT_MOST unless given). One writer: one thread
    takes its turns."""

    def __init__(self, database_path: str, wait_most: float | None = None) -> None:
        self.path = turns_path(database_path)
        self.fd = open_turns(database_path)
        self._wait_most = wait_most  # None: WAIT_MOST
        self._waiter: _Waiter | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """This writer's turn: taken (waited for at most ``wait_most``, or
        TurnNotGiven), let go of after."""
        waiter = self._waiter
        if waiter is not None and waiter.pending:
            # A wait given up on is still in flock: its flock would be
            # granted beside ours (one open file) and then let go of, with
            # ours. The turn is taken through it.
            self._wait()
        else:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._wait()
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _wait(self) -> None:
        if self._waiter is None:
            self._waiter = _Waiter(self.fd)
            self._waiter.start()
        waiter = self._waiter
        wait_most = WAIT_MOST if self._wait_most is None else self._wait_most
        waiter.ask()
        if waiter.given_within(min(WARN_AFTER, wait_most)):
            return
        warn_waiting(self.path, self.fd)
        if waiter.given_within(max(0.0, wait_most - WARN_AFTER)) or waiter.given_up():
            return
        raise not_given(self.path, self.fd, wait_most)

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.end()
        os.close(self.fd)


class _Waiter(threading.Thread):
    """Waits for the turn (flock's wait: the kernel's queue) for a Turns,
    whose thread waits for it with a time limit. It takes the turn on a
    descriptor of its own (os.dup: the same open file, so the same turn),
    so that a turns file closed while it waits is never another file by
    then. A turn it gets after the asker gave up is let go of at once.

    The asker and the waiter signal each other through two locks used as
    semaphores (``_asked``, ``_given``: one release, one acquire, in C),
    not a Condition: a contended turn of the intake's goes through here,
    and a Condition's wait is a dozen Python steps and a new lock on each
    side. ``_state`` orders giving the turn against giving it up."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="write-turn", daemon=True)
        self.fd = os.dup(fd)
        self._asked = threading.Lock()  # released: a turn is wanted (or the waiter is to end)
        self._asked.acquire()
        self._given = threading.Lock()  # released: the turn is taken for the asker
        self._given.acquire()
        self._state = threading.Lock()
        # Asked and not yet out of flock. Set only by the asker's thread,
        # so it reads it without the lock.
        self.pending = False
        self._given_up = False  # the asker no longer waits: a turn got is let go of
        self._ending = False

    def ask(self) -> None:
        """Asks for the turn; one still pending (given up on) is the asker's again."""
        with self._state:
            self._given_up = False
            if not self.pending:
                self.pending = True
                self._asked.release()

    def given_within(self, seconds: float) -> bool:
        """Whether the turn asked for came within ``seconds`` (it is the asker's then)."""
        return self._given.acquire(timeout=seconds)

    def given_up(self) -> bool:
        """No more asked for; True if it was given meanwhile (it is the asker's then)."""
        with self._state:
            if self._given.acquire(blocking=False):
                return True
            self._given_up = True
            return False

    def end(self) -> None:
        with self._state:
            self._ending = True
            if not self.pending:
                self._asked.release()

    def run(self) -> None:
        try:
            while True:
                self._asked.acquire()
                if self._ending:
                    return
                fcntl.flock(self.fd, fcntl.LOCK_EX)
                with self._state:
                    self.pending = False
                    if self._given_up or self._ending:
                        self._given_up = False
                        fcntl.flock(self.fd, fcntl.LOCK_UN)
                    else:
                        self._given.release()
                    if self._ending:
                        return
        finally:
            os.close(self.fd)


def warn_waiting(path: str, fd: int) -> None:
    """Logs a wait for the turn of ``path`` (open as ``fd``) past WARN_AFTER."""
    log.warning("waiting for the write turn of %s (held by %s)", path, held_by(fd))


def not_given(path: str, fd: int, wait_most: float) -> TurnNotGiven:
    """The failure of a wait for the turn of ``path`` (open as ``fd``) past ``wait_most``."""
    return TurnNotGiven(f"the write turn of {path} was not given within {wait_most:g}s (held by {held_by(fd)})")


def held_by(fd: int) -> str:
    """Who holds the turn of this turns file, for people: the process ids
    and command lines /proc/locks names, or "unknown"."""
    found = os.fstat(fd)
    inode = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    holders = []
    try:
        with open("/proc/locks") as locks:
            for line in locks:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; a waiter's line has "->" after the number.
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
                    holders.append(f"process {fields[4]} ({_command(fields[4])})")
    except OSError:
        pass
    return ", ".join(holders) or "unknown"


def _command(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read(200).replace(b"\0", b" ").decode(errors="replace").strip() or "?"
    except OSError:
        return "gone"


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
        self.turns = Turns(path) if path else None

    def __del__(self) -> None:
        if self.turns is not None:
            self.turns.close()


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
    with held.turns.turn():
        yield


def in_turn(connection: sqlite3.Connection, work: Callable[..., T], *args: Any) -> T:
    """``work(connection, *args)`` in this process's turn (on the database's thread)."""
    with taken(connection):
        return work(connection, *args)
