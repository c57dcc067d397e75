"""Real `clienttrack serve` processes for the tests that need several of
them, signals or kill -9; and a receiving SMTP sink that counts what the
outbox relays to it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import SMTP

CLIENTTRACK = str(Path(sys.executable).with_name("clienttrack"))
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the gateway exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {timeout}s:\n{log.read_text()[-3000:]}")


@dataclass
class Gateway:
    """One `clienttrack serve` process."""

    name: str
    folder: Path
    env: dict[str, str]
    roles: str
    smtp_port: int = 0
    web_port: int = 0
    prefix: list[str] = field(default_factory=list)  # e.g. unshare, to be PID 1
    process: subprocess.Popen | None = None
    _log_start: int = 0  # where this start's lines begin in the log (a restart appends)

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> "Gateway":
        command = [*self.prefix, CLIENTTRACK, "serve", "--demo", "--roles", self.roles]
        if "smtp" in self.roles:
            self.smtp_port = self.smtp_port or free_port()
            command += ["--smtp-port", str(self.smtp_port)]
        if "web" in self.roles:
            self.web_port = self.web_port or free_port()
            command += ["--web-port", str(self.web_port)]
        with open(self.log, "ab") as log:
            self._log_start = log.tell()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
                                            stdin=subprocess.DEVNULL)
        return self

    def wait_ready(self, timeout: float = 60, tries: int = 3) -> "Gateway":
        # The banner comes once every port is bound: a port that answers may
        # be another test's that took the free_port() we picked (xdist runs
        # several at once), with our process dead of "Address already in use".
        # Then pick new ports and start again.
        try:
            self.wait_for_log("is running", timeout)
        except AssertionError:
            if tries <= 1 or b"Address already in use" not in self.log.read_bytes()[self._log_start:]:
                raise
            self.smtp_port = self.web_port = 0
            return self.start().wait_ready(timeout, tries - 1)
        for port in (self.smtp_port, self.web_port):
            if port:
                wait_for_port(port, self.process, self.log, timeout)
        return self

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text.encode() in self.log.read_bytes()[self._log_start:]:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} never logged {text!r}:\n{self.log.read_text()[-3000:]}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait; kill -9 if it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout}s:\n{self.log.read_text()[-3000:]}")


def gateway_env(data_dir: Path, database_url: str | None, **settings: object) -> dict[str, str]:
    """The environment of a gateway process: ours less any CLIENTTRACK_*,
    plus the settings given (upper-cased into CLIENTTRACK_NAME). One
    process unless ``processes`` is given: the default (one worker a CPU)
    would double the CPU of tests that do not need several."""
    settings.setdefault("processes", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTTRACK_")}
    env["CLIENTTRACK_DATA_DIR"] = str(data_dir)
    if database_url:
        env["CLIENTTRACK_DATABASE_URL"] = database_url
    for name, value in settings.items():
        env[f"CLIENTTRACK_{name.upper()}"] = str(value)
    return env


class Sink:
    """A receiving SMTP server on loopback that keeps every message."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        for rcpt in envelope.rcpt_tos:
            self.received.append((rcpt, str(message["Message-ID"])))
        return "250 2.0.0 Ok"

    async def __aenter__(self) -> "Sink":
        self.server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(self, hostname="sink.test", ident="sink"), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def doubled(self) -> dict[tuple[str, str], int]:
        return {key: n for key, n in Counter(self.received).items() if n > 1}

    async def wait_for(self, count: int, stall: float = 60, timeout: float = 900) -> float:
        """Seconds until ``count`` messages arrived; raises as soon as none
        came for ``stall`` seconds (how long the whole takes is the machine's
        load: the test of 120 requests took 38 s in a suite at load 12, and a
        fixed 120 s was near at load 25), or after ``timeout``, a last guard."""
        start = progress = time.monotonic()
        seen = len(self.received)
        while len(self.received) < count:
            now = time.monotonic()
            if len(self.received) != seen:
                seen, progress = len(self.received), now
            if now - progress > stall or now - start > timeout:
                raise AssertionError(f"the sink got {len(self.received)} of {count} messages in {now - start:.0f}s, "
                                     f"none in the last {now - progress:.0f}s")
            await asyncio.sleep(0.05)
        return time.monotonic() - start
