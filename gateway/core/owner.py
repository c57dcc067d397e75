"""Who holds a queue row: the owner a runner writes into its lease, and
whether an owner that ran on this machine is dead.

An owner reads ``host/boot/pid/start``: the host name, this boot of the
machine, the process id and the process's start time (in clock ticks since
boot, from /proc). A process is dead when it is from an earlier boot, or
no process with its pid runs now, or the one that does started at another
time (the pid was reused: a restarted container's PID 1 is one). So a
restart takes back at once what its dead predecessor held, without waiting
for the lease to run out. Owners on other hosts are never judged: their
leases run out when they stop renewing them. Each process therefore needs
a host name of its own (containers get one by default).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    start: str

    def __str__(self) -> str:
        return f"{self.host}/{self.boot}/{self.pid}/{self.start}"

    @classmethod
    def parse(cls, text: str) -> "Owner | None":
        parts = text.rsplit("/", 3)
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        host, boot, pid, start = parts
        return cls(host, boot, int(pid), start)


def this_process(proc: Path = PROC) -> Owner:
    pid = os.getpid()
    return Owner(socket.gethostname().replace("/", "_"), _boot_id(proc), pid, _start_time(proc, pid) or "?")


def dead_here(text: str, me: Owner, proc: Path = PROC) -> bool:
    """True when ``text`` names a process on this host that no longer runs."""
    owner = Owner.parse(text)
    if owner is None or owner.host != me.host or owner == me:
        return False
    if owner.boot != me.boot:
        return True  # this machine has restarted since
    return _start_time(proc, owner.pid) != owner.start


def _boot_id(proc: Path) -> str:
    try:
        return (proc / "sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "?"


def _start_time(proc: Path, pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), or None."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[19]
