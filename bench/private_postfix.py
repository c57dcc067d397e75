"""A private Postfix on loopback for benchmarks: its own configuration,
queue and data directories under a temporary folder, an smtpd on a free
127.0.0.1 port that puts every message on HOLD (accepted into the durable
queue, fsync'd before the 250, never delivered), stopped and removed
afterwards. It is the anchor the gateway's acceptance is measured against.

Needs Postfix installed (its daemon need not run: this is a separate
instance) and root (Postfix's master drops to the postfix user itself).
The recipe is the one in LIBRARY-NOTES (the team's notes on this machine):
own config_directory, queue_directory and data_directory, loopback only,
nothing relayed anywhere, the log in a file of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# The services a minimal instance needs from the stock master.cf (the
# pipe-based transports and the public smtp listener are left out).
SERVICES = ("pickup", "cleanup", "qmgr", "rewrite", "bounce", "defer", "trace", "verify", "flush",
            "proxymap", "proxywrite", "smtp", "relay", "showq", "error", "retry", "discard", "local",
            "virtual", "lmtp", "anvil", "scache", "postlog")
STOCK_MASTER = Path("/etc/postfix/master.cf")


def available() -> str | None:
    """Why a private Postfix cannot run here, or None when it can."""
    if shutil.which("postfix") is None or not STOCK_MASTER.exists():
        return "Postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix needs root"
    return None


def _master_cf(port: int) -> str:
    """The stock services, none chrooted (the private queue has no chroot
    files), and smtpd on 127.0.0.1:port holding every message it accepts."""
    lines = []
    keep = False
    for line in STOCK_MASTER.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():  # an option line of the service above
            if keep:
                lines.append(line)
            continue
        fields = line.split()
        keep = fields[0] in SERVICES and fields[1] != "inet"
        if keep:
            fields[4] = "n"  # chroot
            lines.append("  ".join(fields))
    lines.append(f"127.0.0.1:{port} inet n - n - - smtpd"
                 " -o smtpd_recipient_restrictions=check_recipient_access,static:HOLD")
    return "\n".join(lines) + "\n"


def _main_cf(root: Path, relay_port: int) -> str:
    return "\n".join([
        "compatibility_level = 3.6",
        f"queue_directory = {root / 'queue'}",
        f"data_directory = {root / 'data'}",
        "inet_interfaces = 127.0.0.1",
        "inet_protocols = ipv4",
        "myhostname = bench.localhost",
        "mydestination =",
        "relay_domains = demo.localhost",
        # Nothing listens there, and nothing leaves the hold queue anyway.
        f"relayhost = [127.0.0.1]:{relay_port}",
        "mynetworks = 127.0.0.0/8",
        "smtpd_relay_restrictions = permit_mynetworks, reject",
        "smtp_dns_support_level = disabled",
        "alias_maps =",
        "alias_database =",
        "biff = no",
        f"maillog_file = {root / 'maillog'}",
        f"maillog_file_prefixes = {root}",
        # The limit smtp-source's 10 sessions never reach.
        "default_process_limit = 100",
        "",
    ])


def _postfix(config: Path, *args: str) -> subprocess.CompletedProcess:
    # Without a terminal postfix prints nothing; its exit code still tells.
    return subprocess.run(["postfix", "-c", str(config), *args], capture_output=True, text=True)


@contextmanager
def private_postfix(port: int, relay_port: int = 9) -> Iterator[Path]:
    """A private Postfix listening on 127.0.0.1:port; yields its folder
    (queue under queue/, log in maillog). Always stopped and removed."""
    why = available()
    if why:
        raise RuntimeError(why)
    root = Path(tempfile.mkdtemp(prefix="bench-postfix-"))
    root.chmod(0o755)  # the postfix user walks through it
    config = root / "etc"
    config.mkdir()
    (root / "queue").mkdir()
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix", "postfix")
    (config / "main.cf").write_text(_main_cf(root, relay_port))
    (config / "master.cf").write_text(_master_cf(port))
    for extra in ("dynamicmaps.cf",):
        if (STOCK_MASTER.parent / extra).exists():
            shutil.copy(STOCK_MASTER.parent / extra, config / extra)
    started = False
    try:
        # set-permissions makes the queue's folders with their owners and modes.
        _postfix(config, "set-permissions")
        result = _postfix(config, "start")
        if result.returncode != 0:
            raise RuntimeError(f"postfix start failed: {result.stdout}{result.stderr}"
                               f"{(root / 'maillog').read_text() if (root / 'maillog').exists() else ''}")
        started = True
        yield root
    finally:
        if started:
            _postfix(config, "stop")
            _wait_stopped(root)
        shutil.rmtree(root, ignore_errors=True)


def master_pid(root: Path) -> int | None:
    try:
        return int((root / "queue" / "pid" / "master.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def held(root: Path) -> int:
    """Messages in the hold queue."""
    return sum(len(files) for _, _, files in os.walk(root / "queue" / "hold"))


def _wait_stopped(root: Path, timeout: float = 20.0) -> None:
    pid = master_pid(root)
    deadline = time.monotonic() + timeout
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    if pid is not None:  # never leave it running
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
