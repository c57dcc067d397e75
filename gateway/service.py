"""`clienttrack serve`: the SMTP gateway, the web app and the queue
runners, in one process and one event loop. (With CLIENTTRACK_PROCESSES
above 1, gateway/workers.py runs that many such processes on the same
ports: the parent prepares and binds, each worker calls running() with the
sockets it inherited.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import AsyncIterator, Awaitable, Callable, Iterator

import uvicorn
from starlette.types import ASGIApp

from gateway import housekeeping, vault
from gateway.admission import intake
from gateway.admission.composed import Composed
from gateway.admission.draining import Sessions
from gateway.admission.keylookup import Resolver, dns_resolver
from gateway.admission.smtp import Admission, protocol_factory
from gateway.blobs import BlobStore, open_store
from gateway.core import datadir, db
from gateway.core.clock import Clock, system_clock
from gateway.core.directory import DEMO_DOMAIN, DEMO_STAFF, seed_demo
from gateway.core.health import keep_running
from gateway.core.leases import LeaseKeeper
from gateway.core.paths import TEMPLATES_DIR
from gateway.core.settings import Settings
from gateway.deps import Deps
from gateway.documents import storing
from gateway.inbound.runner import QueueRunner
from gateway.outbound.compose import Composer, compile_all
from gateway.outbound.dkimkeys import KeyStore
from gateway.outbound.outbox import OutboxRunner, transport_for
from gateway.outbound.signing import Signer
from gateway.reminders.chase import Chaser
from web.app import create_app
from web.header_timeout import with_header_timeout

log = logging.getLogger("clienttrack.service")


@dataclass
class Running:
    deps: Deps
    smtp_port: int
    web_port: int
    stopping: asyncio.Event


@dataclass
class Listening:
    """The sockets a process was handed, already bound and listening (the
    roles it does not run have none)."""

    smtp: socket.socket | None
    web: socket.socket | None


def bind(settings: Settings, *, shared: bool = False, listen: bool = True) -> Listening:
    """The listening sockets of the roles the settings ask for. ``shared``:
    SO_REUSEPORT, so that several processes each listen on the port (the
    kernel spreads connections over them); ``listen=False``: only bound,
    which holds the port (port 0: picks it) for such processes."""
    roles = set(settings.roles)
    return Listening(
        listening_socket(settings.smtp_host, settings.smtp_port, shared, listen) if "smtp" in roles else None,
        listening_socket(settings.web_host, settings.web_port, shared, listen) if "web" in roles else None)


def with_ports(settings: Settings, listening: Listening) -> Settings:
    """Port 0 asked for any free port: links must carry the one we got."""
    return dataclasses.replace(
        settings,
        smtp_port=listening.smtp.getsockname()[1] if listening.smtp else settings.smtp_port,
        web_port=listening.web.getsockname()[1] if listening.web else settings.web_port,
    )


async def prepare(settings: Settings, clock: Clock = system_clock) -> None:
    """What runs once a deployment starts, before anything serves: the
    data folder, the master key, the schema (made, checked or upgraded),
    the demo firm with its DKIM keys (as `firm add` makes a firm's: made
    here once, not by each worker at its first mail, each making a pair and
    all but one throwing theirs away); the mail templates compiled, once
    for the workers forked after it."""
    compile_all(TEMPLATES_DIR / "email")
    datadir.prepare(settings.data_dir, settings.database)
    vault.load_or_create_master_key(settings.master_key_path)
    await _make_blob_folders(open_store(settings))
    async with db.opened(settings.database, upgrade_on_start=settings.upgrade_on_start):
        if settings.demo:
            await seed_demo(clock())
            # On this thread, not a pool's: serve forks its workers next, and
            # a thread that used OpenSSL may still be in OpenSSL's exit
            # handlers (a lock held) after Python has joined it; a worker
            # forked then waited on that lock forever at its first mail.
            KeyStore(settings.data_dir).ensure(DEMO_DOMAIN, clock().date())


async def _make_blob_folders(store: BlobStore) -> None:
    """Every folder the blob store will put a request's files in, made and
    flushed before anything serves, by one process (workers forked after
    prepare() find them): a fresh store made them one by one inside
    requests' puts, a mkdir and an fsync of its parent on most of its first
    ~1,500 requests. Then closed."""
    try:
        await store.make_folders(storing.folders())
    finally:
        await store.close()


def listening_socket(host: str, port: int, shared: bool = False, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that
    # say so, and without it keep-alive responses wait ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def running(
    settings: Settings, clock: Clock = system_clock, resolve: Resolver | None = None, *,
    listening: Listening | None = None, upkeep: bool = True,
) -> AsyncIterator[Running]:
    """Start the roles the settings ask for (all by default); stop them all
    on exit. Port 0 picks a free port; `resolve` replaces DNS (for tests).
    A worker of several (gateway/workers.py) is handed its ``listening``
    sockets (on the ports its parent holds, after prepare(): the demo firm
    is not seeded again); only the worker with ``upkeep`` runs housekeeping."""
    # aiosmtpd logs every DATA line at DEBUG: subjects carry passwords.
    logging.getLogger("mail.log").setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    datadir.prepare(settings.data_dir, settings.database)
    master_key = vault.load_or_create_master_key(settings.master_key_path)
    roles = set(settings.roles)
    alone = listening is None  # not a worker of several, whose parent ran prepare()
    async with db.opened(settings.database, upgrade_on_start=settings.upgrade_on_start):
        if listening is None:
            if settings.demo:
                await seed_demo(clock())
            listening = bind(settings)
        settings = with_ports(settings, listening)
        smtp_sock, web_sock = listening.smtp, listening.web
        deps = Deps(settings, master_key, clock, Composer(TEMPLATES_DIR / "email", hostname=settings.hostname))
        if alone:  # as prepare() does for workers
            await deps.blobs.make_folders(storing.folders())
        stopping = asyncio.Event()
        tasks: list[asyncio.Task] = []
        closers: list[Callable[[], Awaitable[None]]] = []
        sessions = Sessions(settings.large_sessions)
        admitting = None
        if smtp_sock or web_sock:
            # Mail by SMTP and mail composed on the dashboard are admitted alike, in one group commit.
            admitting = await intake.opened(settings.database, settings.sender_hourly_limit,
                                            settings.firm_hourly_limit)
            deps.submit = Composed(admitting, master_key, clock, deps.inbound_wake)
        if smtp_sock:
            admission = Admission(settings, master_key, clock, deps.inbound_wake,
                                  resolve or dns_resolver(nameservers=settings.dns_nameservers), admitting,
                                  deps.blobs)
            smtp_server = await asyncio.get_running_loop().create_server(
                protocol_factory(settings, admission, sessions), sock=smtp_sock
            )
            # New sessions get 421 and those in DATA their answer (sessions.drain,
            # below); then the socket closes.
            closers.append(_closer(smtp_server))
        if web_sock:
            web, web_task = await start_web(create_app(deps), web_sock, settings.web_header_timeout)
            tasks.append(web_task)
            closers.append(partial(_stop_web, web))
        if admitting is not None:
            # Stop taking mail first, then let the last batch commit.
            closers.append(admitting.close)
        keeper = None
        if {"queue", "outbox"} & roles:
            # Leases name this process, are renewed while it lives, and what a
            # dead predecessor on this machine held is taken back at once.
            keeper = LeaseKeeper(deps.owner, timedelta(seconds=settings.lease_seconds), clock)
            await keeper.reclaim_dead()
            tasks.append(asyncio.create_task(keep_running(
                "leases", keeper.step, stopping=stopping, health=deps.health, idle_seconds=keeper.renew_every),
                name="leases"))
        if "queue" in roles:
            queue_runner = QueueRunner(deps)
            tasks += [asyncio.create_task(queue_runner.run(f"queue-{i}", stopping, settings.poll_seconds),
                                          name=f"queue-{i}")
                      for i in range(settings.queue_workers)]
        if "queue" in roles and upkeep:
            # Once a deployment's processes, not once each (it is safe more
            # often, only wasted: see gateway/workers.py).
            tasks.append(asyncio.create_task(
                housekeeping.run(clock, stopping, deps.blobs, timedelta(hours=settings.message_max_age_hours),
                                 Chaser(deps)),
                name="housekeeping"))
        if "outbox" in roles:
            transport = transport_for(
                str(settings.relay_url) if settings.relay_url else None, settings.outbox_dir, settings.hostname
            )
            outbox_runner = OutboxRunner(
                transport=transport, composer=deps.composer, master_key=master_key, clock=clock,
                wake=deps.outbox_wake, mail_coming=deps.mail_coming, max_attempts=settings.outbox_max_attempts,
                retry_base_seconds=settings.outbox_retry_base_seconds, owner=str(deps.owner),
                lease=timedelta(seconds=settings.lease_seconds),
                signer=Signer(KeyStore(settings.data_dir), clock, ed25519=settings.dkim_ed25519),
            )
            tasks.append(asyncio.create_task(outbox_runner.run(stopping, deps.health, settings.poll_seconds),
                                             name="outbox"))
            closers.append(transport.close)
        try:
            yield Running(deps, settings.smtp_port, settings.web_port, stopping)
        finally:
            # Within stop_timeout: runners finish what they hold (or it is
            # handed back), SMTP answers the sessions in DATA.
            deadline = time.monotonic() + settings.stop_timeout
            stopping.set()
            deps.inbound_wake.set()
            deps.outbox_wake.set()
            cut = await sessions.drain(deadline)
            if cut:
                log.warning("stopped with %d SMTP sessions still in DATA after %.0fs", cut, settings.stop_timeout)
            for close in closers:
                await close()
            _, late = await asyncio.wait(tasks, timeout=max(0.1, deadline - time.monotonic()))
            for task in late:
                log.warning("%s did not finish within %.0fs; stopped", task.get_name(), settings.stop_timeout)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if keeper is not None:
                await _hand_back(keeper)
            await deps.blobs.close()
            deps.crypto_pool.shutdown(wait=True)
            deps.crypto_connections.close()


async def _hand_back(keeper: LeaseKeeper) -> None:
    try:
        await keeper.hand_back()
    except Exception as exc:  # the database is gone: the leases run out instead
        log.warning("could not hand back held messages (%s); their leases run out in %.0fs",
                    exc, keeper.lease.total_seconds())


class _Uvicorn(uvicorn.Server):
    """uvicorn without signal handlers of its own, stopped by stop() without
    waiting out uvicorn's clock. Its handlers replaced the service's, so
    SIGTERM stopped the web side only (and then re-raised the signal, which
    PID 1 ignores): the service's handlers stop everything."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exiting = asyncio.Event()

    def stop(self) -> None:
        self.should_exit = True
        self._exiting.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn's loop (on_tick renews the Date header once a second, every
        # tenth tick), but stop() wakes it: uvicorn only saw should_exit at its
        # next 0.1 s tick.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._exiting.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's graceful shutdown (no new connections; idle ones close,
        # requests in flight finish and then close theirs) without its fixed
        # 0.1 s sleep and its 0.1 s polls. Nothing signals the last connection
        # closing, so look often; as before, nothing bounds the wait here:
        # running() cancels this task at its stop_timeout. (No lifespan to end:
        # start_web turns it off.)
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()


async def start_web(app: ASGIApp, sock: socket.socket,
                    header_timeout: float = Settings.web_header_timeout) -> tuple[_Uvicorn, asyncio.Task]:
    """``app`` under uvicorn on ``sock``, in this event loop, once it is
    listening. No lifespan, no Server header, and no access log of
    uvicorn's own: web/accesslog.py writes one without the link tokens.
    No proxy headers of uvicorn's own either: it would believe
    X-Forwarded-For from any local client (web/proxies.py believes it from
    CLIENTTRACK_TRUSTED_PROXIES only). A request's headers must arrive
    within ``header_timeout`` seconds (web/header_timeout.py).
    (Benchmarks and tests serve their apps through this too.)"""
    web = _Uvicorn(uvicorn.Config(app, lifespan="off", access_log=False, log_config=None, server_header=False,
                                        proxy_headers=False, http=with_header_timeout(header_timeout)))
    task = asyncio.create_task(web.serve(sockets=[sock]), name="web")
    await _started(web, task)
    return web, task


async def _started(web: uvicorn.Server, task: asyncio.Task) -> None:
    while not web.started:
        if task.done():
            await task  # raises what stopped the web server starting
            raise RuntimeError("the web server stopped while starting")
        await asyncio.sleep(0.01)


async def _stop_web(web: _Uvicorn) -> None:
    web.stop()


def _closer(server: asyncio.AbstractServer) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        server.close()
        await server.wait_closed()

    return close


def banner(settings: Settings, smtp_port: int) -> str:
    base = settings.public_base_url
    smtp = f"{settings.smtp_host}:{smtp_port}"
    lines = [
        "",
        f"clienttrack gateway is running{' (demo)' if settings.demo else ''}.",
        f"  SMTP   {smtp}",
        f"  Web    {base}/healthz",
        f"  Data   {settings.data_dir.resolve()}",
    ]
    if settings.demo:
        subject = 'Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint="First pet" +fee'
        lines += [
            f"  Outbox {base}/demo/outbox  (every mail the gateway sends lands here)",
            "",
            f"Demo firm: Demo Accounting, pay@{DEMO_DOMAIN}; staff {DEMO_STAFF} (admin).",
            "Send a sample payment request from another terminal, with swaks:",
            "",
            f"  swaks --server {smtp} --from {DEMO_STAFF} --to pay@{DEMO_DOMAIN} \\",
            f"    --header 'Subject: {subject}' \\",
            "    --body 'Hello Jane, your invoice is attached.' --attach-type application/pdf --attach-name invoice-1042.pdf --attach @tests/data/invoice-1042.pdf",
            "",
            "or with plain Python:",
            "",
            "  python3 -c \"import smtplib; from email.message import EmailMessage; m = EmailMessage(); "
            f"m['From'] = '{DEMO_STAFF}'; m['To'] = 'pay@{DEMO_DOMAIN}'; "
            f"m['Subject'] = '{subject.replace('$', chr(92) + '$').replace(chr(34), chr(92) + chr(34))}'; "
            "m.set_content('Hello Jane, your invoice is attached.'); "
            "m.add_attachment(b'%PDF-1.4 sample invoice', maintype='application', subtype='pdf', "
            "filename='invoice-1042.pdf'); "
            f"smtplib.SMTP('{settings.smtp_host}', {smtp_port}).send_message(m)\"",
            "",
            f"Then open {base}/demo/outbox, open the mail to jane@client.example and click \"View your email\".",
            "The password is Blue42.",
        ]
    lines.append("Stop with Ctrl-C.")
    return "\n".join(lines)


async def serve(settings: Settings) -> None:
    # Our own handlers, so SIGTERM stops gracefully even as PID 1 (which
    # ignores a signal it has no handler for), and Ctrl-C the same way.
    # Installed before anything starts: once the ports were open and before
    # they were, a SIGTERM to PID 1 was lost (seen in the PID-1 test on a
    # busy machine); now one during start-up stops it once started.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_on_signal, stop, signum, settings.stop_timeout)
    async with running(settings) as gw:
        print(banner(settings, gw.smtp_port), flush=True)
        await stop.wait()  # then running() stops it all, within stop_timeout


def stop_on_signal(stop: asyncio.Event, signum: int, stop_timeout: float) -> None:
    if not stop.is_set():
        log.info("%s: stopping (at most %.0fs)", signal.Signals(signum).name, stop_timeout)
    stop.set()
