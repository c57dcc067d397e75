"""The leases this process holds on queue rows, kept short and renewed.

A runner's claim on an inbound or outbound row lasts ``lease`` (seconds,
CLIENTTRACK_LEASE_SECONDS) and names its owner (gateway/core/owner.py).
The keeper renews this process's leases every third of that, so a live
runner keeps what it holds however long the work takes, and a dead one's
rows come free soon. It also takes back at once the rows of owners that
died on this machine (a restart after kill -9 resumes its predecessor's
work without waiting), and on a graceful stop hands back what this process
still holds.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from tortoise.expressions import F

from gateway.core.clock import Clock
from gateway.core.models import InboundMessage, InboundStatus, OutboundMessage, OutboundStatus
from gateway.core.owner import Owner, dead_here

log = logging.getLogger("clienttrack.leases")


class LeaseKeeper:
    def __init__(self, owner: Owner, lease: timedelta, clock: Clock) -> None:
        self.owner = owner
        self.me = str(owner)
        self.lease = lease
        self.clock = clock

    @property
    def renew_every(self) -> float:
        return self.lease.total_seconds() / 3

    async def step(self) -> bool:
        await self.renew()
        await self.reclaim_dead()
        return False  # then wait a third of the lease

    async def renew(self) -> None:
        until = self.clock() + self.lease
        await InboundMessage.filter(lease_owner=self.me, status=InboundStatus.PROCESSING).update(lease_until=until)
        await OutboundMessage.filter(lease_owner=self.me, status=OutboundStatus.QUEUED).update(lease_until=until)

    async def reclaim_dead(self) -> int:
        """Free the rows of owners that died on this machine; how many."""
        owners = set(await InboundMessage.filter(status=InboundStatus.PROCESSING).exclude(lease_owner="")
                     .distinct().values_list("lease_owner", flat=True))
        owners |= set(await OutboundMessage.filter(status=OutboundStatus.QUEUED).exclude(lease_owner="")
                      .distinct().values_list("lease_owner", flat=True))
        freed = 0
        for owner in sorted(owners):
            if not dead_here(owner, self.owner):
                continue
            # Its attempt counts: a message that kills its runner ends in quarantine.
            inbound = await InboundMessage.filter(lease_owner=owner, status=InboundStatus.PROCESSING).update(
                status=InboundStatus.QUEUED, lease_until=None, lease_owner="")
            outbound = await OutboundMessage.filter(lease_owner=owner, status=OutboundStatus.QUEUED).update(
                lease_until=None, lease_owner="")
            if inbound or outbound:
                log.warning("took back %d inbound and %d outbound messages held by %s, which died",
                            inbound, outbound, owner)
            freed += inbound + outbound
        return freed

    async def hand_back(self) -> int:
        """On a graceful stop: give back what this process still holds, its
        attempt not counted (nothing went wrong with the message)."""
        inbound = await InboundMessage.filter(lease_owner=self.me, status=InboundStatus.PROCESSING).update(
            status=InboundStatus.QUEUED, attempts=F("attempts") - 1, lease_until=None, lease_owner="")
        outbound = await OutboundMessage.filter(lease_owner=self.me, status=OutboundStatus.QUEUED).update(
            lease_until=None, lease_owner="")
        if inbound or outbound:
            log.info("handed back %d inbound and %d outbound messages", inbound, outbound)
        return inbound + outbound
