"""Shared fixtures: a real gateway (SMTP + web + runners) on loopback ports,
with its own data directory and database, and helpers to send mail and read
the outbox. `--database=postgres` runs the suite on a throwaway PostgreSQL
cluster (tests/testdb.py says how the database is chosen)."""

from __future__ import annotations

import asyncio
import email
import fcntl
import email.policy
import logging
import os
import shutil
import smtplib
import sqlite3
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from gateway.core import settings as settings_module
from gateway.core import writeturns
from gateway.core.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus
from gateway.service import Running, running
from tests import testdb

DATA = Path(__file__).resolve().parent / "data"
DEMO_STAFF = "staff@demo.localhost"
GATEWAY = "pay@demo.localhost"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--database", choices=[testdb.SQLITE, testdb.POSTGRES], default=None,
                     help="run the suite on SQLite (the default) or on a throwaway PostgreSQL cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_database: the test never opens one of the run's databases (none, or "
                                       "a cluster of its own whatever the pass), so the PostgreSQL pass "
                                       "leaves it out (tests/testdb.py); asking for one fails the test")
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite's own behaviour (its connection's "
                                       "settings, its pages), which PostgreSQL has no counterpart of: the "
                                       "PostgreSQL pass leaves it out rather than skipping it")
    config.addinivalue_line("markers", "empty_database: on PostgreSQL the test's databases start empty, "
                                       "not at the latest migration (tests/testdb.py)")
    testdb.current = testdb.TestDatabases.chosen(config.getoption("--database"), dict(os.environ))
    _share_httpx_tls_context()
    _patient_httpx_clients()
    # xdist's default hands out tests in chunks of consecutive ones: the
    # longest tests, first in the order (pytest_collection_modifyitems),
    # would all go to one worker. One at a time instead, unless chosen.
    if config.pluginmanager.hasplugin("xdist") and config.getoption("maxschedchunk", None) is None:
        config.option.maxschedchunk = 1


# The tests that take longest (tens of seconds: real processes, a browser,
# releases upgraded), longest first, as node id prefixes. They run before
# the rest; see pytest_collection_modifyitems. (`--durations=40` tells
# which tests are the longest now.)
LONGEST_FIRST = (
    "tests/test_processes.py::test_a_10_second_database_outage",
    "tests/test_processes.py",
    "tests/test_workers.py",
    "tests/test_migrations.py::test_a_release_database_from_before_migrations",
    "tests/test_browser_staff.py::test_a_staff_member_from_the_dashboard",
    "tests/test_migrations.py::test_an_older_install",
    "tests/test_browser",
    "tests/test_documents_migrate.py",
    "tests/test_deliverability.py",
    "tests/test_migrations.py",
    "tests/test_cli.py",
    "tests/test_reminders.py",
    "tests/test_large_messages.py",
    "tests/test_web_staff_reports.py",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (make test): two workers a CPU this process may use. About
    half of a worker's time goes to waiting (subprocesses starting, uvicorn's
    0.1 s ticks when a gateway stops, fsync, sleeps in tests that poll), so
    with one a CPU the CPUs sat idle half the time. PYTEST_XDIST_AUTO_NUM_WORKERS
    still chooses, as in xdist."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    return 2 * len(os.sched_getaffinity(0))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest tests first (LONGEST_FIRST), so none of them starts last
    and keeps one worker busy after the others ran out of tests: with
    --maxschedchunk=1 (pytest_configure) xdist hands tests out one at a time
    in this order. The PostgreSQL pass runs the tests that use a database
    and are not about SQLite alone (no_database, sqlite_only), only."""
    def rank(item: pytest.Item) -> int:
        return next((n for n, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)),
                    len(LONGEST_FIRST))
    items.sort(key=rank)  # stable: otherwise in the order collected
    if not testdb.current.postgres:
        return
    def sqlite_or_none(item: pytest.Item) -> bool:
        return any(item.get_closest_marker(name) for name in ("no_database", "sqlite_only"))
    left_out = [item for item in items if sqlite_or_none(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not sqlite_or_none(item)]


def _share_httpx_tls_context() -> None:
    """httpx makes a TLS context for every client (loading certifi's CA
    bundle: ~40 ms of CPU) and the suite makes hundreds of clients, nearly
    all for plain http on loopback. Clients with the default verification
    share one context here; any other choice is left to httpx."""
    from httpx._transports import default as transports

    make = transports.create_ssl_context
    made: dict[tuple, object] = {}

    def shared(verify=True, cert=None, trust_env=True):
        if verify is not True or cert is not None:
            return make(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in made:
            made[key] = make(verify=verify, cert=cert, trust_env=trust_env)
        return made[key]

    transports.create_ssl_context = shared


def _patient_httpx_clients() -> None:
    """httpx gives up on a response after 5 s by default. The suite shares
    2 cores with other work, and at load average 20 a page that takes 50 ms
    alone took longer (a ReadTimeout failed test_web_staff_reports once).
    Clients the tests make without a timeout of their own wait 60 s; a test
    that means a deadline passes one, and a hung server still fails.

    They also drop a kept-alive connection after 1 s idle, not httpx's 5 s:
    uvicorn closes an idle one after 5 s, and a request sent on it just as
    the server closes it fails with ReadError (a browser would retry; httpx
    does not). Under load a test's client idled that long between two pages
    and test_web_pay failed so. The server's timer starts before the client
    has the response, so a client that gives up first never races it."""
    import httpx

    for client in (httpx.Client, httpx.AsyncClient):
        client.__init__.__kwdefaults__["timeout"] = httpx.Timeout(60.0)
        client.__init__.__kwdefaults__["limits"] = httpx.Limits(max_connections=100, max_keepalive_connections=20,
                                                                keepalive_expiry=1.0)


def pytest_unconfigure(config: pytest.Config) -> None:
    testdb.current.close()  # the cluster stops and its folder goes, whatever happened


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {testdb.current.describe()}"


@pytest.fixture(autouse=True)
def _root_logging_as_found() -> Iterator[None]:
    """A test that runs cli.main() in this process (test_datadir,
    test_migrations) gets its logs.configure: a handler on the root writing
    to the stderr of that moment, capsys's, closed when the test ends, and
    the root at INFO. Every later log line of the worker (a gateway's
    threads, other tests) then printed a "--- Logging error ---" traceback
    into whatever test ran. The plain StreamHandlers a test added go, and
    the root's level is put back; pytest's own handlers are subclasses."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if type(handler) is logging.StreamHandler and handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _drop_test_databases(request: pytest.FixtureRequest) -> Iterator[None]:
    testdb.current.refusing = request.node.nodeid if request.node.get_closest_marker("no_database") else None
    testdb.current.empty = request.node.get_closest_marker("empty_database") is not None
    yield
    testdb.current.refusing, testdb.current.empty = None, False
    testdb.current.end_test()


def database_url(tmp_path: Path) -> str:
    """This test's own empty database, on the database the run is for."""
    return testdb.current.url(tmp_path)


def command_database(folder: Path) -> str | None:
    """The database a command run in a test should use: on SQLite none (its
    default file in its data dir, as a user gets it), else the folder's own."""
    testdb.current.check_allowed()
    return database_url(folder) if testdb.current.postgres else None


def need_tool(name: str, *alternatives: str) -> str:
    """The path of a system tool. A missing one fails the test, never skips
    it: `make test` installs them all (tests/system-packages)."""
    for candidate in (name, *alternatives):
        path = shutil.which(candidate)
        if path is not None:
            return path
    pytest.fail(f"{name} is not installed: `make test` installs it (see tests/system-packages)")


def make_settings(tmp_path: Path, **overrides) -> settings_module.Settings:
    # A database_url given is the test's own: none of the run's is made.
    if "database_url" not in overrides:
        testdb.current.check_allowed()
    options = {
        "data_dir": tmp_path / "data",
        # On SQLite, the default (DATA_DIR/clienttrack.db) as a user gets it.
        "database_url": database_url(tmp_path) if testdb.current.postgres and "database_url" not in overrides
        else None,
        "demo": True,
        "smtp_port": 0,
        "web_port": 0,
        "queue_workers": 2,
        "outbox_retry_base_seconds": 0.05,
        **overrides,
    }
    return settings_module.load(options, environ={})


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Running]:
    async with running(make_settings(tmp_path)) as gw:
        yield gw


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium():
    """Debian's Chromium through Playwright, started once a worker for the
    browser tests (tests/test_browser.py's browser fixture gives each test a
    context of its own). Starting Playwright's driver and Chromium cost
    ~1.7 s of CPU, and was once a browser test. Playwright's objects belong
    to the event loop that made them: this one is the session's."""
    from playwright.async_api import async_playwright

    executable = need_tool("chromium", "chromium-browser")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        await browser.close()


class WriterInItsTurn:
    """Another process's writer in the middle of its turn (as an intake's
    batch is): it holds the write turn (gateway/core/writeturns.py) and
    SQLite's write lock until done()."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.turn = writeturns.open_turns(path)
        fcntl.flock(self.turn, fcntl.LOCK_EX)
        self.connection.execute("BEGIN IMMEDIATE")

    def done(self) -> None:
        """Its transaction committed, its turn let go of."""
        self.connection.execute("COMMIT")
        fcntl.flock(self.turn, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        os.close(self.turn)  # lets go of the turn, if still held
        self.connection.close()


@contextmanager
def writer_in_its_turn(path: str) -> Iterator[WriterInItsTurn]:
    writer = WriterInItsTurn(path)
    try:
        yield writer
    finally:
        writer.close()


def request_mail(subject: str, *, sender: str = DEMO_STAFF, body: str = "Hello Jane,\nyour invoice is attached.\n",
                 attachments: list[tuple[str, str, bytes]] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = GATEWAY
    message["Subject"] = subject
    message["Message-ID"] = email.utils.make_msgid(domain="demo.localhost")
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


# Clients get threads of their own: the server in this same process uses the
# default executor, and clients blocking it would starve the server.
CLIENT_THREADS = ThreadPoolExecutor(32, "smtp-client")


async def send(gw: Running, message: EmailMessage, *, sender: str | None = None,
               rcpt: str | None = None) -> dict:
    """Send with smtplib from a thread, as a separate client would."""
    def deliver() -> dict:
        with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=30) as client:
            return client.send_message(message, from_addr=sender, to_addrs=[rcpt] if rcpt else None)
    return await asyncio.get_running_loop().run_in_executor(CLIENT_THREADS, deliver)


async def settled(timeout: float = 20.0) -> None:
    """Wait until the inbound queue is empty and the outbox has nothing due."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        busy = await InboundMessage.filter(status__in=[InboundStatus.QUEUED, InboundStatus.PROCESSING]).count()
        pending = await OutboundMessage.filter(status=OutboundStatus.QUEUED).count()
        if not busy and not pending:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not settle in time")


def outbox_mails(gw: Running) -> list[email.message.EmailMessage]:
    folder = gw.deps.settings.outbox_dir / "new"
    if not folder.exists():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    ]


def mails_to(gw: Running, address: str) -> list[email.message.EmailMessage]:
    return [m for m in outbox_mails(gw) if address in str(m["To"])]
