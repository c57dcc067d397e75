"""SMTP admission: who we accept mail for, and the durable 250.

Runs aiosmtpd's protocol class on the application's own event loop (the
database connection lives in contextvars, so the threaded Controller could
not reach it). The gateway never relays: a RCPT that is not a firm's
gateway address gets 550, and at most MAX_RCPT recipients are taken. The
message must be unambiguous, its From authenticated, fresh and new
(gateway/admission/senderauth.py) and one of the firm's staff, else 550
(or 451 when DNS fails) and no mail goes back to anyone. The message is sealed;
the staff check, the hourly limits and the commit to the inbound queue are
one step (gateway/admission/intake.py), done before the 250, whose text carries the
queue id. Mail to an outbound message's bounce address takes the other door,
bounces.py: no sender authentication (a bounce has no sender to check), the
address's own MAC checked at RCPT instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import timedelta
from email.utils import parseaddr

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.admission import authresults, bounces, replays, senderauth, sql
from gateway.admission.draining import DrainingSMTP, Refuse, Sessions
from gateway.admission.intake import Intake, Verdict
from gateway.admission.keylookup import Resolver
from gateway.blobs import BlobStore
from gateway.core import metrics
from gateway.core.clock import Clock
from gateway.core.health import disk_full
from gateway.core.models import KIND_BY_LOCAL_PART
from gateway.core.settings import Settings
from gateway.inbound import bodies, queue as inbound

log = logging.getLogger("clienttrack.smtp")

IDENT = "clienttrack gateway"
DOMAIN_CACHE_SECONDS = 5.0
DOMAIN_CACHE_SIZE = 10_000
# RCPT commands in one transaction (RFC 5321 4.5.3.1.8 asks servers to take
# at least 100): each costs a look-up, so a client may not send thousands.
MAX_RCPT = 100


@functools.lru_cache(maxsize=1024)  # a pure function, asked for every RCPT and DATA
def gateway_domain(address: str) -> str | None:
    """The firm domain of a gateway address like pay@firm.example or
    secure@firm.example, else None."""
    local, at, domain = parseaddr(address)[1].lower().rpartition("@")
    if not at or local not in KIND_BY_LOCAL_PART or not domain:
        return None
    return domain


def _local_part(address: str) -> str:
    return parseaddr(address)[1].lower().rpartition("@")[0]


# A refusal says why; 451 for the hourly limits (a runaway script or a
# stolen mailbox waits, and a real sender's server simply retries later).
_REFUSALS = {
    Verdict.NOT_STAFF: "550 5.7.1 {sender} may not send to {gateway}: not on the firm's staff list",
    Verdict.REPLAYED: "550 5.7.1 Replayed message: this Message-ID was already accepted for {gateway} "
                      "(a signed message acts once)",
    Verdict.SENDER_LIMIT: "451 4.7.1 Too many messages from {sender} this hour, try again later",
    Verdict.FIRM_LIMIT: "451 4.7.1 Too many messages for {gateway} this hour, try again later",
}


class Admission:
    """aiosmtpd handler: decides RCPT and commits DATA to the inbound queue."""

    def __init__(
        self,
        settings: Settings,
        master_key: bytes,
        clock: Clock,
        on_queued: asyncio.Event,
        resolve: Resolver,
        intake: Intake,
        blobs: BlobStore,
    ) -> None:
        self.bounces = bounces.Bounces(master_key, clock, on_queued)
        self.settings = settings
        self.master_key = master_key
        self.clock = clock
        self.on_queued = on_queued
        self.resolve = resolve
        self.intake = intake
        self.blobs = blobs
        self.own_ids = frozenset(i.lower() for i in (*settings.trusted_authserv_ids, settings.hostname))
        # Gateway domains seen lately (domain -> (is a firm, until)): a RCPT
        # costs no query, and a firm added elsewhere shows within seconds.
        self._domains: dict[str, tuple[bool, float]] = {}

    async def is_gateway(self, domain: str) -> bool:
        now = time.monotonic()
        known, until = self._domains.get(domain, (False, 0.0))
        if until < now:
            known = await sql.firm_exists(domain)
            if len(self._domains) >= DOMAIN_CACHE_SIZE:
                self._domains.clear()
            self._domains[domain] = (known, now + DOMAIN_CACHE_SECONDS)
        return known

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        envelope.rcpt_commands = getattr(envelope, "rcpt_commands", 0) + 1
        if envelope.rcpt_commands > MAX_RCPT:
            return f"452 4.5.3 Too many recipients (at most {MAX_RCPT} a message)"
        if bounces.takes(address):
            return await self.bounces.rcpt(envelope, address, _peer_host(session))
        if bounces.addressed(envelope):
            return bounces.ONE_RECIPIENT
        domain = gateway_domain(address)
        if domain is None or not await self.is_gateway(domain):
            return f"550 5.1.1 <{address}>: no such gateway address here (this server does not relay)"
        known = {gateway_domain(r) for r in envelope.rcpt_tos}
        if known and domain not in known:
            return "452 4.5.3 One firm per message, please send the rest separately"
        # pay@ and secure@ make different things of the same mail: one of them.
        if any(_local_part(r) != _local_part(address) for r in envelope.rcpt_tos):
            return "452 4.5.3 One gateway address per message: pay@ or secure@, not both"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def open_body(self, session: Session, envelope: Envelope) -> bodies.BodyWriter:
        """Where a large message's body goes as it arrives (draining.py): the
        blob store, sealed, under the queue id its row will have."""
        return bodies.BodyWriter(self.blobs, self.master_key, inbound.new_queue_id())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        peer_host = _peer_host(session)
        # A large message: the header section here, its body stored already.
        raw = envelope.original_content or envelope.content
        body: bodies.BodyWriter | None = getattr(envelope, "body", None)
        if bounces.addressed(envelope):
            try:
                return await self.bounces.data(envelope, raw, peer_host, body)
            except Exception:
                log.exception("could not queue a report for %s from %s", envelope.rcpt_tos[0], peer_host)
                return "451 4.3.0 Temporary failure, please try again later"
        whole = None
        if body is not None:
            async def whole() -> bytes:
                return raw + await bodies.read_all(self.blobs, self.master_key, body.queue_id, body.salt, body.size)
        try:
            now = self.clock()
            verdict = await senderauth.authenticate(raw, peer_host=peer_host, checks=senderauth.Checks(
                trust_loopback=self.settings.demo,
                trusted_authserv_ids=self.settings.trusted_authserv_ids,
                resolve=self.resolve,
                now=now,
                max_age=timedelta(hours=self.settings.message_max_age_hours),
                gateway_addresses=envelope.rcpt_tos,
            ), whole=whole)
            if not verdict.ok:
                metrics.ADMISSION.labels("sender not authenticated").inc()
                return _refused(envelope, peer_host, verdict.smtp_reply)
            domain = gateway_domain(envelope.rcpt_tos[0])
            # Results carrying our ids were checked here or are forgeries:
            # nothing downstream may read them.
            raw = authresults.strip(raw, self.own_ids)
            arrival = inbound.arrival(
                raw,
                message_key=replays.digest(verdict.message_id) if verdict.message_id else "",
                master_key=self.master_key,
                mail_from=envelope.mail_from or "",
                sender=verdict.from_address,
                firm_domain=domain,
                rcpt_tos=envelope.rcpt_tos,
                peer=peer_host,
                trusted_peer=verdict.method == "trusted-peer",
                now=now,
                body=body,
            )
            admitted = await self.intake.admit(arrival)
            if body is not None and admitted is Verdict.ADMITTED:
                body.taken = True  # its row is committed: the queue deletes it once done
        except Exception as exc:
            # Nothing was committed, so the client keeps the message and retries.
            log.exception("could not check or queue a message from %s", peer_host)
            metrics.ADMISSION.labels("temporary failure").inc()
            if disk_full(exc):
                return "452 4.3.1 Insufficient system storage, please try again later"
            return "451 4.3.0 Temporary failure, please try again later"
        metrics.ADMISSION.labels("accepted" if admitted is Verdict.ADMITTED else admitted.value).inc()
        if admitted is not Verdict.ADMITTED:
            gateway = f"{_local_part(envelope.rcpt_tos[0])}@{domain}"
            return _refused(envelope, peer_host,
                            _REFUSALS[admitted].format(sender=verdict.from_address, domain=domain, gateway=gateway))
        log.info("queued %s from=%s by=%s size=%d peer=%s",
                 arrival.queue_id, verdict.from_address, verdict.method, arrival.size, peer_host)
        self.on_queued.set()
        return f"250 2.0.0 Ok: queued as {arrival.queue_id}"


def _peer_host(session: Session) -> str:
    return session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)


def _refused(envelope: Envelope, peer_host: str, reply: str) -> str:
    log.info("refused from=%s peer=%s: %s", envelope.mail_from, peer_host, reply)
    return reply


def protocol_factory(settings: Settings, handler: Admission, sessions: Sessions | None = None):
    sessions = sessions or Sessions(settings.large_sessions)

    def make() -> asyncio.Protocol:
        if sessions.closing:
            return Refuse()
        return DrainingSMTP(
            handler,
            sessions=sessions,
            large_message_bytes=settings.large_message_bytes,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname,
            ident=IDENT,
        )

    return make

