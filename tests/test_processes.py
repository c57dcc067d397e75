"""Several real gateway processes on one database: exactly once, whatever
the shape; kill -9 and a restart; SIGTERM, also as PID 1."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.core import db
from gateway.core.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus
from tests.conftest import database_url, request_mail
from tests.pgcluster import Cluster
from tests.processes import Gateway, Sink, gateway_env

SENDERS = 10
# The kill -9 run: how many messages, and when the runner dies. make test
# runs a smaller one; CLIENTTRACK_TEST_KILL_MESSAGES=2000 the figure.
KILL_MESSAGES = int(os.environ.get("CLIENTTRACK_TEST_KILL_MESSAGES", "120"))
KILL_AT = 0.4


def _subject(n: int) -> str:
    return f"Invoice {n} $10.00 to=client{n}@client.example pw=Blue42"


def _send(port: int, n: int) -> str:
    """One payment request over SMTP; the server's reply code and text."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        try:
            client.send_message(request_mail(_subject(n)))
        except smtplib.SMTPResponseException as exc:
            return f"{exc.smtp_code} {exc.smtp_error!r}"
    return "250"


async def _send_all(ports: list[int], numbers: range, accepted: list[int]) -> None:
    """Send each message once, from SENDERS threads, round robin over ports."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(SENDERS) as pool:
        async def one(n: int) -> None:
            if (await loop.run_in_executor(pool, _send, ports[n % len(ports)], n)) == "250":
                accepted.append(n)
        await asyncio.gather(*(one(n) for n in numbers))


def _settings(tmp_path: Path, relay: str | None = None, **more) -> dict[str, str]:
    settings = dict(sender_hourly_limit=1_000_000, firm_hourly_limit=1_000_000, poll_seconds=0.1,
                    lease_seconds=6, **more)
    if relay:
        settings["relay_url"] = relay
    return gateway_env(tmp_path / "data", database_url(tmp_path), **settings)


async def _settle_counts(url: str) -> dict[str, int]:
    async with db.opened(url):
        return {
            "unfinished": await InboundMessage.filter(
                status__in=[InboundStatus.QUEUED, InboundStatus.PROCESSING]).count(),
            "quarantined": await InboundMessage.filter(status=InboundStatus.QUARANTINED).count(),
            "outbound_waiting": await OutboundMessage.filter(status=OutboundStatus.QUEUED).count(),
            "held": await InboundMessage.exclude(lease_owner="").count()
                    + await OutboundMessage.exclude(lease_owner="").count(),
        }


async def test_two_fronts_and_two_runners_deliver_every_mail_exactly_once(tmp_path):
    messages = 120
    async with Sink() as sink:
        env = _settings(tmp_path, relay=sink.url)
        first = Gateway("front-1", tmp_path, env, "smtp,web").start().wait_ready()  # makes the key and schema
        others = [Gateway("front-2", tmp_path, env, "smtp,web"),
                  Gateway("runner-1", tmp_path, env, "queue,outbox"),
                  Gateway("runner-2", tmp_path, env, "queue,outbox")]
        for each in others:
            each.start()
        everyone = [first, *others]
        try:
            for each in others:
                await asyncio.to_thread(each.wait_ready)
            accepted: list[int] = []
            await _send_all([first.smtp_port, others[0].smtp_port], range(messages), accepted)
            assert sorted(accepted) == list(range(messages))
            # Each request: the client's mail and the staff member's confirmation.
            await sink.wait_for(2 * messages)
            await asyncio.sleep(1)  # anything doubled would arrive now
        finally:
            codes = [await asyncio.to_thread(each.stop) for each in everyone]
    assert sink.doubled() == {}
    clients = sorted(rcpt for rcpt, _ in sink.received if rcpt.startswith("client"))
    assert clients == sorted(f"client{n}@client.example" for n in range(messages))
    assert len(sink.received) == 2 * messages
    assert codes == [0, 0, 0, 0]
    counts = await _settle_counts(database_url(tmp_path))
    assert counts == {"unfinished": 0, "quarantined": 0, "outbound_waiting": 0, "held": 0}
    # Both runners did some of the work.
    logs = [each.log.read_text() for each in others[1:]]
    assert all("delivered" in log for log in logs), logs


async def test_kill_9_under_load_loses_and_doubles_nothing_and_a_restart_resumes_at_once(tmp_path):
    url = database_url(tmp_path)
    env = _settings(tmp_path)  # the Maildir: deliveries named by outbound id
    front = Gateway("front", tmp_path, env, "smtp,web").start().wait_ready()
    runner = Gateway("runner", tmp_path, env, "queue,outbox").start()
    await asyncio.to_thread(runner.wait_ready)
    accepted: list[int] = []
    restarted = None
    sending = asyncio.ensure_future(_send_all([front.smtp_port], range(KILL_MESSAGES), accepted))
    try:
        while len(accepted) < KILL_AT * KILL_MESSAGES:
            # Refused mail never reaches the count: fail, don't wait forever.
            assert not sending.done(), f"sending ended with {len(accepted)} of {KILL_MESSAGES} accepted"
            await asyncio.sleep(0.01)
        async with db.opened(url):
            # Killed while it holds work, or there is nothing to take back: on
            # a busy machine the runner could be between claims at 40 %.
            while not any(await _held()):
                assert not sending.done(), f"the runner held nothing while {len(accepted)} messages went in"
                await asyncio.sleep(0.01)
            runner.kill()
            killed_at = len(accepted)
            held = await _held()
            dead_owners = await _owners_of(held)
            restarted = Gateway("runner", tmp_path, env, "queue,outbox").start()  # at once, as systemd would
            restarted_at = time.monotonic()
            await asyncio.to_thread(restarted.wait_ready)
            startup = time.monotonic() - restarted_at  # Python's imports, mostly: ~1.5 s of CPU
            # Read once the new runner says it runs: its start took back what
            # the dead one held (before its runners began), or nothing did.
            still_held = await _owners_of(held) & dead_owners
            # A generous guard only: when the held work is done depends on the
            # machine's load (the backlog, the KDF), not on the lease.
            resumed = await _until_done(held, restarted_at, timeout=600)
        await sending
        drain = await _drained(tmp_path, len(accepted), time.monotonic(), timeout=600)
    finally:
        sending.cancel()
        await asyncio.to_thread(front.stop)
        await asyncio.to_thread(runner.stop)  # killed already, unless the test failed before
        if restarted is not None:
            await asyncio.to_thread(restarted.stop)
    mails = _maildir(tmp_path / "data" / "outbox")
    clients = [to for to in mails if to.startswith("client")]
    lost = set(f"client{n}@client.example" for n in accepted) - set(clients)
    doubled = len(clients) - len(set(clients))
    report = (f"{KILL_MESSAGES} messages from {SENDERS} senders, the runner killed -9 after {killed_at} were "
              f"accepted, holding {len(held[0])} inbound and {len(held[1])} outbound: {len(accepted)} accepted, "
              f"{len(lost)} lost, {doubled} doubled; held by the dead runner when the new one ran: "
              f"{sorted(still_held)}; what it held was done {resumed:.1f}s after the restart "
              f"({startup:.1f}s of it starting up); "
              f"the queue drained {drain:.1f}s after the last message was accepted")
    print(report)
    assert sorted(accepted) == list(range(KILL_MESSAGES))
    assert (lost, doubled) == (set(), 0), report
    assert mails.count("staff@demo.localhost") == KILL_MESSAGES, report  # one confirmation each
    assert held[0] or held[1], report  # the kill caught the runner holding work
    # Not the lease running out: taken back as the process starts. (This was
    # "done within 10 s of starting", which a busy machine broke: the time
    # is the backlog's, under load.)
    assert still_held == set(), report
    counts = await _settle_counts(url)
    assert counts["unfinished"] == 0 and counts["outbound_waiting"] == 0 and counts["held"] == 0


async def _held() -> tuple[set[str], set[int]]:
    """What runners hold now: inbound ids being processed, outbound ids being delivered."""
    inbound = set(await InboundMessage.filter(status=InboundStatus.PROCESSING).values_list("id", flat=True))
    outbound = set(await OutboundMessage.filter(status=OutboundStatus.QUEUED).exclude(lease_owner="")
                   .values_list("id", flat=True))
    return inbound, outbound


async def _owners_of(held: tuple[set[str], set[int]]) -> set[str]:
    """The lease owners of those rows that are still held."""
    inbound, outbound = held
    return (set(await InboundMessage.filter(id__in=list(inbound) or [""], status=InboundStatus.PROCESSING)
                .exclude(lease_owner="").values_list("lease_owner", flat=True))
            | set(await OutboundMessage.filter(id__in=list(outbound) or [0], status=OutboundStatus.QUEUED)
                  .exclude(lease_owner="").values_list("lease_owner", flat=True)))


async def _until_done(held: tuple[set[str], set[int]], since: float, timeout: float) -> float:
    """Seconds from ``since`` until every held message is finished."""
    inbound, outbound = held
    while time.monotonic() - since < timeout:
        open_in = await InboundMessage.filter(id__in=list(inbound) or [""], status__in=[
            InboundStatus.QUEUED, InboundStatus.PROCESSING]).count()
        open_out = await OutboundMessage.filter(id__in=list(outbound) or [0], status=OutboundStatus.QUEUED).count()
        if not open_in and not open_out:
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    raise AssertionError(f"what the dead runner held was not done {timeout}s after the restart")


async def _drained(tmp_path: Path, accepted: int, since: float, timeout: float, stall: float | None = None) -> float:
    """Seconds from ``since`` until every accepted message's two mails are in
    the Maildir. ``stall``: fail as soon as no mail came for that long (the
    backlog's time depends on the machine's load, a stuck loop's does not)."""
    outbox = tmp_path / "data" / "outbox" / "new"
    count, progress = -1, time.monotonic()
    while time.monotonic() - since < timeout:
        now = len(os.listdir(outbox)) if outbox.is_dir() else 0
        if now >= 2 * accepted:
            return time.monotonic() - since
        if now != count:
            count, progress = now, time.monotonic()
        elif stall is not None and time.monotonic() - progress > stall:
            raise AssertionError(f"{now} of {2 * accepted} mails delivered, none in the last {stall}s")
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(os.listdir(outbox))} of {2 * accepted} mails delivered after {timeout}s")


def _maildir(outbox: Path) -> list[str]:
    """The To address of each file in the Maildir's new/."""
    import email
    import email.policy
    found = []
    for path in (outbox / "new").iterdir():
        with open(path, "rb") as fh:
            found.append(str(email.message_from_binary_file(fh, policy=email.policy.default)["To"]))
    return found


async def test_sigterm_as_pid_1_answers_data_refuses_new_sessions_and_exits_clean(tmp_path):
    env = _settings(tmp_path, stop_timeout=20)
    # unshare: a PID namespace of its own, where the gateway is PID 1 (the
    # Dockerfile's shape), which ignores any signal it has no handler for.
    gateway = Gateway("pid1", tmp_path, env, "smtp,web,queue,outbox",
                      prefix=["unshare", "--pid", "--fork", "--mount-proc"]).start().wait_ready()
    try:
        in_data = socket.create_connection(("127.0.0.1", gateway.smtp_port), timeout=30)
        reader = in_data.makefile("rb")
        assert reader.readline().startswith(b"220")
        message = request_mail(_subject(1)).as_bytes(policy=request_mail(_subject(1)).policy.clone(linesep="\r\n"))
        for command in (b"EHLO client.test", b"MAIL FROM:<staff@demo.localhost>", b"RCPT TO:<pay@demo.localhost>",
                        b"DATA"):
            in_data.sendall(command + b"\r\n")
            while (line := reader.readline())[3:4] == b"-":
                pass
        assert line.startswith(b"354")
        in_data.sendall(message[: len(message) // 2])  # the client is half-way through DATA

        started = time.monotonic()
        os.kill(_pid_1_of(gateway.process.pid), signal.SIGTERM)
        # A new session gets 421 once the signal is handled (within 10 s,
        # however busy the machine).
        deadline = time.monotonic() + 10
        while True:
            await asyncio.sleep(0.2)
            with socket.create_connection(("127.0.0.1", gateway.smtp_port), timeout=10) as late:
                greeting = late.makefile("rb").readline()
            if greeting.startswith(b"421") or time.monotonic() > deadline:
                break
        assert greeting.startswith(b"421"), greeting
        in_data.sendall(message[len(message) // 2:] + b"\r\n.\r\n")
        assert reader.readline().startswith(b"250")  # its message is committed
        in_data.close()
        code = await asyncio.to_thread(gateway.process.wait, 30)
        assert code == 0 and time.monotonic() - started < 20
        counts = await _settle_counts(database_url(tmp_path))
        assert counts["held"] == 0  # nothing left processing: done, or handed back as queued
    finally:
        if gateway.process.poll() is None:  # it failed to stop: kill it, PID 1 takes its namespace along
            os.kill(_pid_1_of(gateway.process.pid), signal.SIGKILL)
            gateway.process.wait(30)


def _pid_1_of(unshare_pid: int) -> int:
    """The gateway: unshare's only child (PID 1 inside its namespace)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("unshare started no child")


@pytest.mark.no_database  # its own cluster on either pass: the PostgreSQL pass would run the same again
async def test_a_10_second_database_outage_under_load_heals_without_a_restart(tmp_path):
    # A cluster of the test's own, whatever database the run is on: it is stopped and started.
    cluster = await asyncio.to_thread(Cluster().start)
    try:
        url = await asyncio.to_thread(cluster.create_database, "outage")
        env = gateway_env(tmp_path / "data", url, sender_hourly_limit=1_000_000, firm_hourly_limit=1_000_000,
                          poll_seconds=0.1, lease_seconds=6)
        gateway = Gateway("gateway", tmp_path, env, "smtp,web,queue,outbox").start()
        await asyncio.to_thread(gateway.wait_ready)
        try:
            accepted: list[int] = []
            sending = asyncio.ensure_future(_keep_sending(gateway.smtp_port, accepted, seconds=18))
            await asyncio.sleep(3)
            await asyncio.to_thread(cluster.halt)
            await asyncio.sleep(2)
            during = await _readyz(gateway.web_port)
            await asyncio.sleep(8)
            await asyncio.to_thread(cluster.resume)
            await sending
            drained = await _drained(tmp_path, len(accepted), time.monotonic(), timeout=900, stall=30)
            after = await _readyz(gateway.web_port)
            assert gateway.process.poll() is None  # never restarted
        finally:
            code = await asyncio.to_thread(gateway.stop)
    finally:
        await asyncio.to_thread(cluster.stop)
    mails = _maildir(tmp_path / "data" / "outbox")
    clients = sorted(to for to in mails if to.startswith("client"))
    assert clients == sorted(f"client{n}@client.example" for n in accepted)  # every acknowledged one, once
    assert during[0] == 503 and "database" in during[1]["problems"], during
    assert after[0] == 200 and after[1]["status"] == "ok", after
    assert code == 0
    log = gateway.log.read_text()
    assert log.count("cannot work") <= 2 * 6, "each loop logs an outage once, not every retry"
    assert "works again" in log
    print(f"outage: {len(accepted)} acknowledged, all delivered {drained:.1f}s after the sending stopped")


async def _keep_sending(port: int, accepted: list[int], seconds: float) -> None:
    """Requests from 4 threads for ``seconds``; what got 250 is in ``accepted``."""
    loop = asyncio.get_running_loop()
    numbers = iter(range(1_000_000))
    end = time.monotonic() + seconds
    with ThreadPoolExecutor(4) as pool:
        async def sender() -> None:
            while time.monotonic() < end:
                n = next(numbers)
                try:
                    reply = await loop.run_in_executor(pool, _send, port, n)
                except (OSError, smtplib.SMTPException):
                    reply = "refused"
                if reply == "250":
                    accepted.append(n)
                else:
                    await asyncio.sleep(0.2)
        await asyncio.gather(*(sender() for _ in range(4)))


async def _readyz(port: int) -> tuple[int, dict]:
    import httpx
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        answer = await http.get("/readyz")
    return answer.status_code, answer.json()
