"""The unlock form as rendered, kept a few seconds per link and language.

Opening a link costs two database lookups and a template render; a link
that is hammered (a client reloading on a poor connection, a mail
scanner, a flood) would pay that every time. Only what is the same for
every browser is kept: the page around its CSRF token, which each response
fills in for its own browser. Pages for unknown links are kept the same
way, so a repeated unknown link answers like a repeated known one.

What a few seconds can leave stale: a request cancelled meanwhile shows
its form until the entry ages out (an unlock always reads the database,
and refuses it). Expiry is checked on every answer, against the clock.
The message page (a browser that unlocked) is never kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Hashable


@dataclass(frozen=True)
class RenderedPage:
    status: int
    # The body up to the CSRF token and after it; ``after`` is None for a
    # page without a form (not found).
    before: bytes
    after: bytes | None
    # The request's expiry, so that a kept page never outlives it.
    expires_at: datetime | None

    def fits(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


class FormCache:
    def __init__(self, seconds: float, size: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.size = size
        self.monotonic = monotonic
        self._pages: dict[Hashable, tuple[float, RenderedPage]] = {}

    def get(self, key: Hashable) -> RenderedPage | None:
        kept = self._pages.get(key)
        if kept is None:
            return None
        if self.monotonic() - kept[0] >= self.seconds:
            del self._pages[key]
            return None
        return kept[1]

    def put(self, key: Hashable, page: RenderedPage) -> None:
        if self.seconds <= 0:
            return
        self._pages.pop(key, None)
        self._pages[key] = (self.monotonic(), page)
        # Entries go oldest first (a dict keeps insertion order): past the
        # bound, the oldest is also the nearest to ageing out anyway.
        while len(self._pages) > self.size:
            del self._pages[next(iter(self._pages))]
