"""Only on the PYTHONPATH of a gateway that bench_end_to_end.py --threads
starts: gives every Python thread its Python name as its OS name
(prctl PR_SET_NAME, 15 bytes), so /proc/PID/task/TID/comm tells the
crypto pool from asyncio's pool, aiosqlite's thread and the intake
(bench/procstat.py, thread_cpu). The main thread keeps the process's."""

import ctypes
import threading

_PR_SET_NAME = 15
_libc = ctypes.CDLL(None)
_bootstrap_inner = threading.Thread._bootstrap_inner


def _named(self: threading.Thread) -> None:
    _libc.prctl(_PR_SET_NAME, self.name.encode()[:15], 0, 0, 0)
    _bootstrap_inner(self)


threading.Thread._bootstrap_inner = _named
