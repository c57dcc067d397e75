"""What the runners, handlers and web app share, built once at start."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Protocol, TypeVar

from gateway.blobs import BlobStore, open_store
from gateway.core.clock import Clock
from gateway.core.health import Health
from gateway.core.inflight import InFlight
from gateway.core.owner import Owner, this_process
from gateway.core.settings import Settings, usable_cpus
from gateway.core.sqlite_threads import ThreadConnections
from gateway.outbound.compose import Composer
from gateway.payments.provider import PaymentProvider
from gateway.payments.providers import provider_for

T = TypeVar("T")


class NotAdmitted(Exception):
    """The gateway would not take a message, as SMTP would have refused it;
    ``reason`` is not_staff, sender_limit or firm_limit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Submit(Protocol):
    """Puts a message into the inbound queue as if it had come by SMTP from
    ``sender`` (gateway/admission/composed.py); its queue id."""

    async def __call__(self, raw: bytes, *, sender: str, firm_domain: str, rcpt: str, peer: str) -> str: ...


def crypto_threads(settings: Settings) -> int:
    """This process's share of the cores, for derivations (the crypto
    pool's threads): across `serve`'s processes as many derivations run at
    once as there are cores. More (two a worker on two cores, before) only
    time-sliced them on the cores, at a cost: a derivation's own CPU in the
    gateway was 1-2.7 ms lower with one a worker (BENCHMARKS.md, issue 18,
    stop 26)."""
    return max(1, usable_cpus() // max(1, settings.worker_processes))


@dataclass
class Deps:
    settings: Settings
    master_key: bytes
    clock: Clock
    composer: Composer
    # Key derivation takes ~20 MiB a go: a small pool bounds memory and CPU
    # (crypto_threads; built from the settings when not given).
    crypto_pool: ThreadPoolExecutor | None = None
    # The crypto threads' own connections to a SQLite file: a request's
    # rows are written on the thread that sealed them (handlers/request.py).
    # Closed after the pool has stopped.
    crypto_connections: ThreadConnections = field(default_factory=ThreadConnections)
    inbound_wake: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # The queue runners' messages under way, whose mail the outbox may wait
    # a moment for to send it in the same batch (gateway/core/inflight.py).
    mail_coming: InFlight = field(default_factory=InFlight)
    # The sandbox, Stripe or nothing, as the settings say; built once.
    payments: PaymentProvider | None = None
    # Where sealed files go (DATA_DIR/blobs/ or S3), as the settings say.
    blobs: BlobStore | None = None
    # Mail composed on the dashboard goes in here; the service sets it (the
    # web app may not import the admission stage itself).
    submit: Submit | None = None
    # Which loops can work now (/readyz), and who this process is in a lease.
    health: Health = field(default_factory=Health)
    owner: Owner = field(default_factory=this_process)

    def __post_init__(self) -> None:
        if self.crypto_pool is None:
            self.crypto_pool = ThreadPoolExecutor(crypto_threads(self.settings), "crypto")
        if self.payments is None:
            self.payments = provider_for(self.settings, clock=self.clock)
        if self.blobs is None:
            self.blobs = open_store(self.settings)

    async def in_crypto_pool(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.crypto_pool, partial(fn, *args))
