"""`serve --processes 2`: real worker processes on one SMTP port, real mail
over loopback. Both workers take sessions and do work, every request is
processed and every mail sent once; SIGTERM (also to PID 1) stops them all
and leaves no process behind; a worker killed -9 is started again and what
it held is finished."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway import deps as deps_module
from gateway.core import db, settings as settings_module
from gateway.core.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus
from gateway.core.paths import TEMPLATES_DIR
from gateway.outbound.compose import Composer
from tests.conftest import database_url
from tests.processes import Gateway, Sink, gateway_env
from tests.test_processes import (
    SENDERS, _maildir, _pid_1_of, _send, _send_all, _settle_counts, _until_done,
)

ALL = "smtp,web,queue,outbox"
RUNNING = re.compile(r"\[worker (\d+)\] clienttrack\.serve: worker \d+ \(pid (\d+)\) running")


def _env(tmp_path: Path, relay: str | None = None, url: str | None = None, **more) -> dict[str, str]:
    settings = dict(sender_hourly_limit=1_000_000, firm_hourly_limit=1_000_000, poll_seconds=0.1,
                    lease_seconds=6, processes=2, **more)
    if relay:
        settings["relay_url"] = relay
    return gateway_env(tmp_path / "data", url or database_url(tmp_path), **settings)


def _workers(gateway: Gateway) -> dict[int, int]:
    """Worker number -> pid, the latest start of each, from the log."""
    return {int(n): int(pid) for n, pid in RUNNING.findall(gateway.log.read_text())}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pids, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_two_workers_share_the_port_and_every_request_and_mail_goes_once(tmp_path):
    messages = 20
    async with Sink() as sink:
        gateway = Gateway("two", tmp_path, _env(tmp_path, relay=sink.url), ALL).start().wait_ready()
        try:
            workers = _workers(gateway)
            assert sorted(workers) == [1, 2]
            accepted: list[int] = []
            await _send_all([gateway.smtp_port], range(messages), accepted)  # a connection a message
            assert sorted(accepted) == list(range(messages))
            await sink.wait_for(2 * messages)
            await asyncio.sleep(1)  # anything doubled would arrive now
        finally:
            code = await asyncio.to_thread(gateway.stop)
    assert code == 0
    assert sink.doubled() == {} and len(sink.received) == 2 * messages
    clients = sorted(rcpt for rcpt, _ in sink.received if rcpt.startswith("client"))
    assert clients == sorted(f"client{n}@client.example" for n in range(messages))
    log = gateway.log.read_text()
    for n in (1, 2):
        assert f"[worker {n}] clienttrack.smtp: queued" in log, log[-3000:]  # took SMTP sessions
        assert re.search(rf"\[worker {n}\] clienttrack\.(runner|outbox): ", log), log[-3000:]  # and did work
    assert log.count("is running") == 1  # one banner
    assert "housekeeping" in re.search(r"\[worker 1\] clienttrack\.serve: worker 1 .*", log).group(0)
    assert "housekeeping" not in re.search(r"\[worker 2\] clienttrack\.serve: worker 2 .*", log).group(0)
    assert "ERROR" not in log, log[-3000:]
    assert _gone(workers.values())  # SIGTERM stopped every worker
    counts = await _settle_counts(database_url(tmp_path))
    assert counts == {"unfinished": 0, "quarantined": 0, "outbound_waiting": 0, "held": 0}


async def test_a_worker_killed_9_is_started_again_and_what_it_held_is_finished(tmp_path):
    messages = 40
    url = database_url(tmp_path)
    gateway = Gateway("kill", tmp_path, _env(tmp_path), ALL).start().wait_ready()  # the Maildir
    accepted: list[int] = []
    cut: dict[int, float] = {}  # sessions worker 2 dropped as it died: the sender would try again later
    sending = asyncio.ensure_future(_send_each(gateway.smtp_port, range(messages), accepted, cut))
    try:
        victim = _workers(gateway)[2]
        async with db.opened(url):
            while not (held := await _held_by(victim))[0] | held[1]:
                assert not sending.done(), f"worker 2 held nothing while {len(accepted)} messages went in"
                await asyncio.sleep(0.01)
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.to_thread(gateway.wait_for_log, "worker 2 started again")
            restarted = time.monotonic()
            await asyncio.to_thread(_until_running_again, gateway, 2, victim)
            # The new worker 2 took back what the dead one held as it started,
            # before it said it runs (if worker 1's keeper had not already).
            still_held = await _held_by(victim)
            # A generous guard only: when the held work is done depends on the
            # machine's load, not on the lease.
            resumed = await _until_done(held, killed, timeout=600)
            await sending
            await _all_done(timeout=300)
    finally:
        sending.cancel()
        code = await asyncio.to_thread(gateway.stop)
    log = gateway.log.read_text()
    # Only sessions begun before worker 2 was running again are cut: those it
    # had open, and those the kernel queued on its listening socket while
    # the killed process was still exiting (a sender can meet both, one
    # after the other, so there may be more cuts than senders).
    assert sorted([*accepted, *cut]) == list(range(messages))
    assert all(began < restarted for began in cut.values()), (restarted, cut)
    assert f"worker 2 (pid {victim}) was killed by SIGKILL" in log
    assert _workers(gateway)[2] != victim
    # Not the lease running out: taken back at once. (This was "done within
    # 30 s of the kill", which is the backlog's time on a busy machine.)
    assert still_held == (set(), set()), f"held by the killed worker when worker 2 ran again: {still_held}"
    print(f"what worker 2 held was done {resumed:.1f}s after the kill")
    mails = _maildir(tmp_path / "data" / "outbox")
    clients = [to for to in mails if to.startswith("client")]
    # Every accepted request once; a cut session's message too if it was
    # committed before the kill (its 250 was lost), never twice.
    assert {f"client{n}@client.example" for n in accepted} <= set(clients) and len(clients) == len(set(clients))
    assert mails.count("staff@demo.localhost") == len(clients)
    assert code == 0
    counts = await _settle_counts(url)
    assert counts == {"unfinished": 0, "quarantined": 0, "outbound_waiting": 0, "held": 0}


def _until_running_again(gateway: Gateway, number: int, dead: int, timeout: float = 120) -> None:
    """Until worker ``number``'s new process (not pid ``dead``) logs that it runs."""
    deadline = time.monotonic() + timeout
    while _workers(gateway).get(number) == dead:
        assert gateway.process.poll() is None, gateway.log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"worker {number} not running again after {timeout}s"
        time.sleep(0.05)


async def _all_done(timeout: float) -> None:
    """Until nothing waits in either queue."""
    deadline = time.monotonic() + timeout
    while (await InboundMessage.filter(status__in=[InboundStatus.QUEUED, InboundStatus.PROCESSING]).exists()
           or await OutboundMessage.filter(status=OutboundStatus.QUEUED).exists()):
        assert time.monotonic() < deadline, f"the queues were not empty {timeout}s after the last message"
        await asyncio.sleep(0.1)


def _send_or_cut(port: int, n: int) -> tuple[str, float]:
    """The answer ("cut" for a session the server dropped) and when the session began."""
    began = time.monotonic()
    try:
        return _send(port, n), began
    except (smtplib.SMTPServerDisconnected, ConnectionError):
        return "cut", began


async def _send_each(port: int, numbers: range, accepted: list[int], cut: dict[int, float]) -> None:
    """Each message once, from SENDERS threads, a connection each; ``cut``:
    the messages whose session was dropped, and when each session began."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(SENDERS) as pool:
        async def one(n: int) -> None:
            answer, began = await loop.run_in_executor(pool, _send_or_cut, port, n)
            if answer == "250":
                accepted.append(n)
            else:
                cut[n] = began
        await asyncio.gather(*(one(n) for n in numbers))


async def _held_by(pid: int) -> tuple[set[str], set[int]]:
    """What the worker with this pid holds: inbound ids being processed, outbound ids being delivered."""
    mine = f"/{pid}/"
    inbound = {m.id for m in await InboundMessage.filter(status=InboundStatus.PROCESSING, lease_owner__contains=mine)}
    outbound = {m.id for m in await OutboundMessage.filter(status=OutboundStatus.QUEUED,
                                                           lease_owner__contains=mine)}
    return inbound, outbound


@pytest.mark.no_database  # signals are the same on either database: a SQLite file of its own, once
async def test_sigterm_to_the_supervisor_as_pid_1_stops_every_worker(tmp_path):
    url = f"sqlite://{tmp_path / 'data' / 'clienttrack.db'}"
    # unshare: a PID namespace of its own, where the supervisor is PID 1.
    gateway = Gateway("pid1", tmp_path, _env(tmp_path, url=url, stop_timeout=10), ALL,
                      prefix=["unshare", "--pid", "--fork", "--mount-proc"]).start().wait_ready()
    try:
        assert await asyncio.to_thread(_send, gateway.smtp_port, 1) == "250"
        started = time.monotonic()
        os.kill(_pid_1_of(gateway.process.pid), signal.SIGTERM)
        code = await asyncio.to_thread(gateway.process.wait, 30)
    finally:
        if gateway.process.poll() is None:
            os.kill(_pid_1_of(gateway.process.pid), signal.SIGKILL)
            gateway.process.wait(30)
    assert code == 0 and time.monotonic() - started < 20
    log = gateway.log.read_text()
    for n in (1, 2):
        assert f"[worker {n}] clienttrack.service: SIGTERM: stopping" in log, log[-3000:]
    assert "did not stop" not in log and "ERROR" not in log, log[-3000:]
    counts = await _settle_counts(url)
    assert counts["held"] == 0


@pytest.mark.no_database
def test_serve_runs_a_worker_a_cpu_whatever_the_roles_unless_told_how_many():
    cpus = len(os.sched_getaffinity(0))
    assert settings_module.load({}, environ={}).worker_processes == cpus
    assert settings_module.load({"roles": "web,queue"}, environ={}).worker_processes == cpus
    assert settings_module.load({"roles": "smtp,web"}, environ={}).worker_processes == cpus
    assert settings_module.load({"roles": "smtp,web", "processes": 3}, environ={}).worker_processes == 3
    assert settings_module.load({}, environ={"CLIENTTRACK_PROCESSES": "1"}).worker_processes == 1


@pytest.mark.no_database
def test_the_processes_derive_as_many_keys_at_once_as_there_are_cores(tmp_path, monkeypatch):
    """Each process's crypto pool is its share of the cores: two workers on
    two cores derive one key each at once, not two each time-sliced on one
    core (BENCHMARKS.md, issue 18); one process alone uses every core."""
    monkeypatch.setattr(deps_module, "usable_cpus", lambda: 4)
    threads = {}
    for processes in (1, 2, 3, 4, 8):
        settings = settings_module.load({"processes": processes, "data_dir": str(tmp_path)}, environ={})
        made = deps_module.Deps(settings, b"k" * 32, lambda: None,
                                Composer(TEMPLATES_DIR / "email", hostname="gw.test"))
        threads[processes] = made.crypto_pool._max_workers
        made.crypto_pool.shutdown()
    assert threads == {1: 4, 2: 2, 3: 1, 4: 1, 8: 1}
