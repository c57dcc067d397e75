"""How hard the client's pages resist guessing, in one place.

The defaults are the product's policy; tests and benchmarks pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Limits:
    # Per request: wrong passwords in a row before it locks, and for how long.
    max_failures: int = 5
    first_lock: timedelta = timedelta(minutes=15)
    # Each lock lasts twice the one before; past this many doublings (about
    # ten days) a longer lock would only outlive the request itself.
    max_doublings: int = 10
    # Per request, whatever the address: tries in any one hour from the first.
    hourly_tries: int = 100
    # Per address (a token bucket): failed tries in a burst, then one every
    # address_refill_seconds. A right password costs nothing.
    address_burst: int = 10
    address_refill_seconds: float = 30.0
    # Addresses remembered at once; past this the fully refilled ones go.
    address_table_size: int = 10_000
    # Argon2id takes ~20 MiB a go: this many at once (the crypto pool's
    # size), and past max_waiting queued tries the page answers 503.
    derivation_slots: int = 2
    max_waiting: int = 32
    # Server-side session: closed after this long without a request.
    session_idle: timedelta = timedelta(minutes=30)
    # The unlock form as rendered, kept per link and language this many
    # seconds (web/formcache.py), and how many such pages at most.
    form_page_seconds: float = 2.0
    form_page_entries: int = 2000

    def lock_duration(self, lock_number: int) -> timedelta:
        """How long the ``lock_number``-th lock (1, 2, ...) lasts."""
        return self.first_lock * 2 ** min(max(lock_number - 1, 0), self.max_doublings)
