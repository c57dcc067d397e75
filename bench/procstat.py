"""What a process tree spends, read from /proc: CPU seconds (its own and
its reaped children's), resident memory and its high-water mark. These
figures hold still when other work shares the machine, where a rate does
not."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces.
    return text[text.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree(pid: int) -> list[int]:
    return [pid, *children(pid)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and of the children they have
    reaped (a child's CPU moves to its parent's count when it exits)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            # utime, stime, cutime, cstime: fields 14-17 of stat(5), from the state on.
            total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def tree_cpu(pid: int) -> float:
    return cpu_seconds(tree(pid))


def thread_cpu(pid: int) -> dict[tuple[int, int], tuple[str, float, tuple[int, int]]]:
    """Every live thread of ``pid``'s tree: (pid, tid) -> (its kind, its
    user + system CPU seconds, its context switches so far: (voluntary,
    forced: the scheduler took the core while it could run)). The kind is
    "supervisor" or "worker" (a process whose parent is in the tree), then
    the thread's OS name without its number (_thread_kind), "main" for a
    process's first."""
    found: dict[tuple[int, int], tuple[str, float, tuple[int, int]]] = {}
    for process in tree(pid):
        role = "supervisor" if process == pid else "worker"
        try:
            tids = [int(name) for name in os.listdir(f"/proc/{process}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                text = Path(f"/proc/{process}/task/{tid}/stat").read_text()
                status = Path(f"/proc/{process}/task/{tid}/status").read_text()
            except OSError:
                continue
            name = "main" if tid == process else _thread_kind(text[text.index("(") + 1:text.rindex(")")])
            fields = text[text.rindex(")") + 2:].split()
            voluntary, forced = (int(line.split()[1]) for line in status.splitlines() if "ctxt_switches:" in line)
            found[(process, tid)] = (f"{role} {name}", (int(fields[11]) + int(fields[12])) / TICKS, (voluntary, forced))
    return found


def _thread_kind(name: str) -> str:
    """"crypto_1" -> "crypto"; aiosqlite's unnamed thread, "Thread-3 (_connection_worker_thread)" cut to
    15 bytes, -> "aiosqlite"."""
    if name.startswith("Thread-") and "(_conn" in name:
        return "aiosqlite"
    return name.rstrip("0123456789_-")


def cpu_by_kind(before: dict[tuple[int, int], tuple[str, float, tuple[int, int]]],
                after: dict[tuple[int, int], tuple[str, float, tuple[int, int]]]) -> dict[str, tuple[float, int, int]]:
    """CPU seconds and context switches (voluntary, forced) each kind of
    thread spent between two thread_cpu() readings (threads that ended
    between them are not counted)."""
    spent: dict[str, tuple[float, int, int]] = {}
    for key, (kind, seconds, (voluntary, forced)) in after.items():
        _, seconds_before, (voluntary_before, forced_before) = before.get(key, (kind, 0.0, (0, 0)))
        total = spent.get(kind, (0.0, 0, 0))
        spent[kind] = (total[0] + seconds - seconds_before, total[1] + voluntary - voluntary_before,
                       total[2] + forced - forced_before)
    return spent


def _status(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status, in bytes (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss(pid: int) -> int:
    return _status(pid, "VmRSS")


def high_water(pid: int) -> int:
    """The process's peak resident memory (VmHWM) since start or the last reset."""
    return _status(pid, "VmHWM")


def reset_high_water(pid: int) -> None:
    """Start the high-water mark again from the present resident size
    (proc(5), clear_refs: 5; needs the same user or root)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")

