"""`clienttrack serve` on every core: CLIENTTRACK_PROCESSES worker
processes (default: the CPUs this process may run on;
Settings.worker_processes), each running the roles asked for, supervised
by the process that started them.

One process and one event loop use about one core: everything but
Argon2id waits for that loop. So `serve` with N > 1:

1. prepares once, in this process: the data folder, the master key, the
   schema (gateway/service.py prepare()), the demo firm; then binds the
   SMTP and web ports with SO_REUSEPORT without listening on them, which
   holds them (port 0 still picks a free port, and the banner and the
   links carry the real one);
2. forks N workers. Each listens on those ports with a SO_REUSEPORT
   socket of its own and runs service.running() on them: its own event
   loop, database connections, SMTP sessions, web server and runners. The
   kernel spreads new connections over the workers' sockets by a hash of
   the addresses. (Measured against the other way, every worker accepting
   on one socket inherited from the parent: with the benchmark's ten
   senders keeping a connection each, one worker took 105 of 150 and 135
   of 150 sessions, because the first to wake accepts every waiting
   connection; SO_REUSEPORT gave 90/60 and 60/90. Its cost: connections
   waiting in a worker's socket when it dies are reset, and the client
   retries, as with any process that dies. A worker that stops closes its
   socket, and new connections go to the others.);
3. prints the banner once every worker is running, and supervises: a
   worker that dies is logged and started again (what it held is taken
   back at once by the new worker's LeaseKeeper, gateway/core/leases.py:
   its owner names a dead process); if workers keep failing before they
   are running (three in a row), the others are stopped and `serve` exits
   with 1. SIGTERM and SIGINT (also as PID 1) go to every worker, which
   stops gracefully as a single process does; this process waits for them
   within CLIENTTRACK_STOP_TIMEOUT (and a few seconds), then kills what is
   left. A worker whose parent dies gets SIGTERM (PR_SET_PDEATHSIG).

What runs once per deployment: prepare() above, here; housekeeping (expiry,
the reminders chaser, retention, forgetting old rows and stored bodies) in
worker 1 only. Running it in every worker would be safe (each of its steps
is a conditional update or an idempotent delete: README, Reminders; two
gateways already share a database that way) but would only do the work N
times. Everything else is per worker and shared through the database:
queue claims are leases naming the worker's process, the hourly limits and
the unlock locks are rows. What stays per process: the web's per-address
unlock throttle and derivation gate (web/throttle.py), the large-message
places (CLIENTTRACK_LARGE_SESSIONS), /readyz and /metrics (the worker that
answers reports itself).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import select
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from gateway import service
from gateway.core import eventloop, logs
from gateway.core.settings import Settings

log = logging.getLogger("clienttrack.serve")

# Workers that end before they are running, in a row, before `serve` gives up.
START_FAILURES = 3
# A worker that ran less than this long before it died is started again
# only after a pause, doubling each time up to MAX_PAUSE.
SHORT_LIFE = 10.0
MAX_PAUSE = 30.0
# On a stop: how much longer than the stop timeout the workers get.
STOP_GRACE = 5.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1


def serve(settings: Settings) -> int:
    """`clienttrack serve`: one process (CLIENTTRACK_PROCESSES=1), or a
    supervisor and its workers; the exit code."""
    if settings.worker_processes <= 1:
        try:
            eventloop.run(service.serve(settings))
        except KeyboardInterrupt:
            pass
        return 0
    return Supervisor(settings).run()


@dataclass
class Worker:
    number: int
    pid: int = 0
    ready_fd: int = -1  # its end of the pipe it says "running" on
    started: float = 0.0
    ready: bool = False
    pauses: int = 0  # restarts in a row after a short life
    restart_at: float | None = None


@dataclass
class Supervisor:
    settings: Settings
    workers: list[Worker] = field(default_factory=list)
    stop_signal: int | None = None
    failures: int = 0  # workers in a row that ended before they were running
    _wake_r: int = -1
    _wake_w: int = -1

    def run(self) -> int:
        self._install_signals()
        try:
            asyncio.run(service.prepare(self.settings))
        except BaseException:
            signal.set_wakeup_fd(-1)
            raise
        # Bound, not listening: holds the ports for the workers' sockets.
        listening = service.bind(self.settings, shared=True, listen=False)
        self.settings = service.with_ports(self.settings, listening)
        self.listening = listening
        try:
            if self.stop_signal is None:
                self.workers = [Worker(number) for number in range(1, self.settings.worker_processes + 1)]
                for worker in self.workers:
                    self._start(worker)
                log.info("started %d worker processes: %s", len(self.workers),
                         ", ".join(str(w.pid) for w in self.workers))
                code = self._supervise()
            else:
                code = 0
            return self._stop_all() or code
        finally:
            for sock in (listening.smtp, listening.web):
                if sock is not None:
                    sock.close()
            signal.set_wakeup_fd(-1)

    # -- signals ----------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        # Before anything else, so a SIGTERM during start-up (also to PID 1,
        # which ignores signals it has no handler for) stops it once started.
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in SIGNALS:
            signal.signal(signum, self._on_stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the wait below

    def _on_stop(self, signum: int, frame: object) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
            log.info("%s: stopping every worker (at most %.0fs)", signal.Signals(signum).name,
                     self.settings.stop_timeout)

    def _wait(self, timeout: float) -> list[int]:
        """Until a signal, a worker's word or ``timeout``; the ready pipes that can be read."""
        fds = [w.ready_fd for w in self.workers if w.ready_fd >= 0]
        try:
            readable, _, _ = select.select([self._wake_r, *fds], [], [], max(0.0, timeout))
        except InterruptedError:
            return []
        if self._wake_r in readable:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        return [fd for fd in readable if fd != self._wake_r]

    # -- starting and watching --------------------------------------------------------------------

    def _start(self, worker: Worker) -> None:
        _alone()
        ready_r, ready_w = os.pipe()
        # Blocked across the fork: the child keeps them blocked until its
        # event loop's handlers are in, so none is lost or taken by ours.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {*SIGNALS, signal.SIGCHLD})
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                self._child(worker.number, ready_w, blocked)  # never returns
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(ready_w)
        worker.pid, worker.ready_fd, worker.started, worker.ready = pid, ready_r, time.monotonic(), False
        worker.restart_at = None

    def _child(self, number: int, ready_w: int, mask: set) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            for other in self.workers:
                if other.ready_fd >= 0:
                    os.close(other.ready_fd)
            for held in (self.listening.smtp, self.listening.web):
                if held is not None:
                    held.close()  # the parent's; the worker listens on sockets of its own
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for signum in SIGNALS:
                signal.signal(signum, signal.SIG_DFL)  # until serve_worker's loop takes them
            _die_with_parent(os.getppid())
            logs.set_worker(number)
            eventloop.run(serve_worker(self.settings, number, ready_w, mask))
            code = 0
        except KeyboardInterrupt:
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("worker %d failed", number)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _supervise(self) -> int:
        bannered = False
        while self.stop_signal is None:
            now = time.monotonic()
            due = [w.restart_at for w in self.workers if w.restart_at is not None]
            for fd in self._wait(min([1.0, *(at - now for at in due)])):
                self._heard(fd)
            if self.stop_signal is not None:
                break
            if self._reap():
                return 1
            for worker in self.workers:
                if worker.restart_at is not None and worker.restart_at <= time.monotonic():
                    self._start(worker)
                    log.info("worker %d started again (pid %d)", worker.number, worker.pid)
            if not bannered and all(w.ready for w in self.workers):
                print(service.banner(self.settings, self.settings.smtp_port), flush=True)
                bannered = True
        return 0

    def _heard(self, fd: int) -> None:
        worker = next(w for w in self.workers if w.ready_fd == fd)
        try:
            said = os.read(fd, 16)
        except OSError:
            said = b""
        if said:
            worker.ready = True
            self.failures = 0
        else:  # it exited: reaped below
            os.close(fd)
            worker.ready_fd = -1

    def _reap(self) -> bool:
        """Collect the workers that ended and plan their restarts; True when
        workers keep failing at start (time to give up)."""
        give_up = False
        for pid, status in _reaped():
            worker = next((w for w in self.workers if w.pid == pid), None)
            if worker is None:
                continue  # as PID 1, an orphan of someone else's
            worker.pid = 0
            if worker.ready_fd >= 0:
                os.close(worker.ready_fd)
                worker.ready_fd = -1
            lived = time.monotonic() - worker.started
            if not worker.ready:
                self.failures += 1
                log.error("worker %d %s before it was running (%d in a row)", worker.number, _ended(status),
                          self.failures)
                if self.failures >= START_FAILURES and not give_up:
                    log.error("workers keep failing at start; stopping")
                    give_up = True
            else:
                log.error("worker %d (pid %d) %s after %.0fs; starting it again", worker.number, pid,
                          _ended(status), lived)
            worker.pauses = worker.pauses + 1 if lived < SHORT_LIFE else 0
            pause = min(MAX_PAUSE, 0.5 * 2 ** (worker.pauses - 1)) if worker.pauses else 0.0
            worker.restart_at = None if give_up else time.monotonic() + pause
        return give_up

    # -- stopping ---------------------------------------------------------------------------------

    def _stop_all(self) -> int:
        """SIGTERM to every worker, then wait for them; 1 if any did not stop cleanly."""
        code = 0
        for worker in self.workers:
            worker.restart_at = None
            if worker.pid:
                _kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_timeout + STOP_GRACE
        while any(w.pid for w in self.workers) and time.monotonic() < deadline:
            self._wait(min(0.2, deadline - time.monotonic()))
            for pid, status in _reaped():
                for worker in self.workers:
                    if worker.pid == pid:
                        worker.pid = 0
                        if status != 0:
                            log.warning("worker %d %s while stopping", worker.number, _ended(status))
                            code = 1
        for worker in self.workers:
            if worker.pid:
                log.warning("worker %d (pid %d) did not stop within %.0fs; killed", worker.number, worker.pid,
                            self.settings.stop_timeout + STOP_GRACE)
                _kill(worker.pid, signal.SIGKILL)
                _waitpid(worker.pid)
                worker.pid, code = 0, 1
            if worker.ready_fd >= 0:
                os.close(worker.ready_fd)
                worker.ready_fd = -1
        return code


async def serve_worker(settings: Settings, number: int, ready_w: int, mask: set) -> None:
    """One worker: the roles, on sockets of its own on the ports its parent
    holds, until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        loop.add_signal_handler(signum, service.stop_on_signal, stop, signum, settings.stop_timeout)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what arrived meanwhile is handled now
    upkeep = number == 1
    listening = service.bind(settings, shared=True)
    async with service.running(settings, listening=listening, upkeep=upkeep):
        log.info("worker %d (pid %d) running %s%s", number, os.getpid(), ",".join(settings.roles),
                 " and housekeeping" if upkeep and "queue" in settings.roles else "")
        os.write(ready_w, b"r")
        os.close(ready_w)
        await stop.wait()


def _alone(timeout: float = 2.0) -> None:
    """Wait (a little) until this process runs no other thread: a fork
    copies only the calling thread, and a lock another one held (the
    database driver's, closing after prepare()) would stay held forever in
    the child."""
    deadline = time.monotonic() + timeout
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    if threading.active_count() > 1:
        log.warning("forking beside threads still running: %s", [t.name for t in threading.enumerate()])


def _die_with_parent(parent: int) -> None:
    """SIGTERM to this process when its parent dies (Linux), so a killed
    supervisor leaves no workers behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _reaped() -> list[tuple[int, int]]:
    """(pid, wait status) of every child that has ended, without waiting."""
    found = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        found.append((pid, status))


def _waitpid(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with {os.waitstatus_to_exitcode(status)}"
