"""The event loop `serve` runs its processes on: uvloop's (libuv's),
not asyncio's own. A request's path crosses the loop many times (the SMTP
session, each hand-off to a thread and back, each database statement), and
uvloop does that work in C: in the end-to-end bench, three interleaved
rounds each, a request cost 44.8 against 48.2 ms of CPU (medians; lower in
all three pairs) with one and the same code otherwise (BENCHMARKS.md,
issue 18, stop 26). The short commands (migrate, status...) keep
asyncio.run: they cross the loop a few times."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), on a uvloop loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
