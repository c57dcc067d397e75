"""A throwaway PostgreSQL cluster on loopback, for the tests and benchmarks.

initdb into a temporary folder, the postmaster started as a child of this
process on a free loopback port, and on stop everything removed. The
postmaster is started with a parent-death signal (setpriv --pdeathsig), so
even a test run killed with -9 leaves no server behind. As root, the server
runs as the ``postgres`` user: initdb refuses to run as root.

Debian and Ubuntu keep the server programs in /usr/lib/postgresql/VERSION/bin,
off the PATH; `make test` installs them when they are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SERVER_PROGRAMS = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"


class ClusterError(RuntimeError):
    """The cluster could not be made or started; the message says why."""


def server_program(name: str) -> str:
    """The newest installed PostgreSQL server program called ``name``."""
    found = [p for p in glob.glob(f"{SERVER_PROGRAMS}/{name}") if os.access(p, os.X_OK)]
    if found:
        return max(found, key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise ClusterError(f"PostgreSQL's {name} is not installed: `make test` installs it "
                       "(or: apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """One throwaway cluster. ``durable=False`` turns fsync off: the tests'
    data lives for one run, and every commit paying for an fsync would
    slow the suite for nothing. Benchmarks pass ``durable=True``, to compare
    with SQLite at synchronous=FULL on equal terms."""

    def __init__(self, *, durable: bool = False, max_connections: int = 300) -> None:
        self.durable = durable
        self.max_connections = max_connections
        self.folder: Path | None = None
        self.port = 0
        self._server: subprocess.Popen | None = None
        # As root the server runs as postgres; otherwise as whoever we are.
        self._as_user = SUPERUSER if os.geteuid() == 0 else None

    # -- the life of the cluster ---------------------------------------------

    def start(self) -> "Cluster":
        self.folder = Path(tempfile.mkdtemp(prefix="clienttrack-pg-"))
        if self._as_user:
            account = pwd.getpwnam(self._as_user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        initdb = self._run_as_owner([server_program("initdb"), "-D", str(self.data), "-U", SUPERUSER,
                                     "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
                                     "--no-instructions"])
        if initdb.returncode != 0:
            self._remove()
            raise ClusterError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        # A port picked free can be taken by someone else before the server
        # binds it (five suites may run at once): then try another.
        for _ in range(5):
            self.port = _free_port()
            if self._launch():
                return self
        self._remove()
        raise ClusterError(f"PostgreSQL did not start; its log:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop the server (fast shutdown: clients are cut off) and remove
        the folder. Nothing is left running or on disk."""
        self.halt()
        self._remove()

    def halt(self) -> None:
        """Stop the server but keep its data: resume() starts it again on
        the same port (an outage, as a test sees it)."""
        server, self._server = self._server, None
        if server is None:
            return
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    def resume(self) -> None:
        if self._server is not None:
            return
        if not self._launch():
            raise ClusterError(f"PostgreSQL did not start again; its log:\n{self.log_text()}")

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------

    @property
    def server_pid(self) -> int:
        """The postmaster's process id (its backends are its children)."""
        if self._server is None:
            raise ClusterError("the cluster is not running")
        return self._server.pid

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> str:
        """Run one statement as the superuser; its output, unaligned."""
        done = subprocess.run(
            [server_program("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", "-c", statement],
            capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise ClusterError(f"{statement}: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- the parts ---------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.folder is not None, "start() first"
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        assert self.folder is not None, "start() first"
        return self.folder / "server.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def _launch(self) -> bool:
        """Start the postmaster on self.port; True once it accepts connections."""
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.folder),  # not /var/run/postgresql: ours alone
            "max_connections": str(self.max_connections),
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
        }
        command = [server_program("postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with open(self.log_path, "ab") as log:
            os.chmod(self.log_path, 0o666)
            self._server = subprocess.Popen(self._owner_prefix(pdeathsig=True) + command, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ready = server_program("pg_isready")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                self._server = None
                return False  # most likely the port was taken meanwhile
            probe = subprocess.run([ready, "-q", "-h", "127.0.0.1", "-p", str(self.port)], timeout=10)
            if probe.returncode == 0:
                return True
            time.sleep(0.05)
        self.halt()
        return False

    def _owner_prefix(self, *, pdeathsig: bool = False) -> list[str]:
        """setpriv: become the cluster's owner (as root), and die with us."""
        prefix = ["setpriv"]
        if self._as_user:
            prefix += [f"--reuid={self._as_user}", f"--regid={self._as_user}", "--init-groups"]
        if pdeathsig:
            prefix += ["--pdeathsig", "SIGINT"]
        return prefix + ["--"] if len(prefix) > 1 else []

    def _run_as_owner(self, command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(self._owner_prefix() + command, capture_output=True, text=True, timeout=120,
                              cwd=self.folder)

    def _remove(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
