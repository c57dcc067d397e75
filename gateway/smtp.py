"""SMTP admission: who we accept mail for, and the durable 250.

Runs aiosmtpd's protocol class on the application's own event loop (the
database connection lives in contextvars, so the threaded Controller could
not reach it). The gateway never relays: a RCPT that is not a firm's
gateway address gets 550. The message is sealed and committed to the
inbound queue before the 250, whose text carries the queue id.
"""

from __future__ import annotations

import asyncio
import logging
from email.utils import parseaddr

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway import inbound
from gateway.clock import Clock
from gateway.models import Firm
from gateway.settings import Settings, is_loopback

log = logging.getLogger("clienttrack.smtp")

IDENT = "clienttrack gateway"
GATEWAY_LOCAL_PART = "pay"


def gateway_domain(address: str) -> str | None:
    """The firm domain of a gateway address like pay@firm.example, else None."""
    local, at, domain = parseaddr(address)[1].lower().rpartition("@")
    if not at or local != GATEWAY_LOCAL_PART or not domain:
        return None
    return domain


class Admission:
    """aiosmtpd handler: decides RCPT and commits DATA to the inbound queue."""

    def __init__(self, settings: Settings, master_key: bytes, clock: Clock, on_queued: asyncio.Event) -> None:
        self.settings = settings
        self.master_key = master_key
        self.clock = clock
        self.on_queued = on_queued

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        domain = gateway_domain(address)
        if domain is None or not await Firm.exists(domain=domain):
            return f"550 5.1.1 <{address}>: no such gateway address here (this server does not relay)"
        known = {gateway_domain(r) for r in envelope.rcpt_tos}
        if known and domain not in known:
            return "452 4.5.3 One firm per message, please send the rest separately"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        peer_host = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            queue_id = await inbound.enqueue(
                envelope.original_content or envelope.content,
                master_key=self.master_key,
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                peer=peer_host,
                trusted_peer=self.settings.demo and is_loopback(peer_host),
                now=self.clock(),
            )
        except Exception:
            # Nothing was committed, so the client keeps the message and retries.
            log.exception("could not queue a message from %s", peer_host)
            return "451 4.3.0 Temporary failure, please try again later"
        log.info("queued %s from=%s size=%d peer=%s", queue_id, envelope.mail_from, len(envelope.content), peer_host)
        self.on_queued.set()
        return f"250 2.0.0 Ok: queued as {queue_id}"


def protocol_factory(settings: Settings, handler: Admission):
    def make() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname,
            ident=IDENT,
        )

    return make

