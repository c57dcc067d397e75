"""SMTP admission's second door: mail to a message's bounce address.

What comes back to ``bounce+<id>.<mac>@<firm domain>`` (vault/verp.py) is a
delivery status notification or an automatic reply: sent by the receiving
side's mail system, with a null sender and nobody's signature we could
check, so sender authentication (senderauth.py) does not apply to it and is
not asked. The address itself is the credential instead: its MAC is checked
at RCPT, and one that does not verify, or names no message of ours, gets the
same 550 as any address we do not have (a forger learns nothing).

A bounce address takes one recipient per transaction, never beside a pay@
address, and at most RETURNS_PER_MESSAGE messages of at most MAX_REPORT_SIZE
in all, counted in the transaction that queues them: whoever saw the address
(the client, on the message's Return-Path) cannot flood it. Accepted mail
goes into the inbound queue sealed, like any other, and the queue runner
hands it to the bounce handler (handlers/bounce.py), never to the chain:
nothing is ever answered.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aiosmtpd.smtp import Envelope
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from gateway.admission.draining import declared_size
from gateway.core.clock import Clock
from gateway.core.models import InboundMessage, OutboundMessage
from gateway.inbound import queue as inbound
from gateway.inbound.bodies import BodyWriter
from gateway.vault.verp import Verp, shaped_like

log = logging.getLogger("clienttrack.smtp.bounces")

# A failed DSN, a delayed one or two, an out-of-office reply: a few suffice.
RETURNS_PER_MESSAGE = 5
# Relays give up after days (Postfix: 5); an auto-reply may come weeks later.
RETURN_WINDOW = timedelta(days=30)
# A report about a client's mail (some 10 kB) is small even when it returns
# the whole message; this keeps what anyone may park in the queue small too.
MAX_REPORT_SIZE = 1024 * 1024
TOO_LARGE = "552 5.3.4 A report to <{address}> may be at most %d kB" % (MAX_REPORT_SIZE // 1024)
ONE_RECIPIENT = "452 4.5.3 A bounce address takes one recipient a message, please send the rest separately"


def takes(address: str) -> bool:
    """True for an address this door answers (written like a bounce address)."""
    return shaped_like(address)


def addressed(envelope: Envelope) -> bool:
    """True when the transaction is for a bounce address (RCPT took only one)."""
    return bool(envelope.rcpt_tos) and takes(envelope.rcpt_tos[0])


class Bounces:
    def __init__(self, master_key: bytes, clock: Clock, on_queued: asyncio.Event) -> None:
        self.master_key = master_key
        self.verp = Verp(master_key)
        self.clock = clock
        self.on_queued = on_queued

    async def rcpt(self, envelope: Envelope, address: str, peer_host: str) -> str:
        if envelope.rcpt_tos:
            return ONE_RECIPIENT
        found = self.verp.verify(address)
        item = None
        if found is not None:
            item = await OutboundMessage.get_or_none(id=found.outbound_id).only("id", "mail_from", "created_at",
                                                                                 "returns")
        if (item is None or item.mail_from.rpartition("@")[2].lower() != found.domain
                or item.created_at < self.clock() - RETURN_WINDOW):
            log.info("refused bounce address %s from peer %s: %s", address, peer_host,
                     "does not verify" if found is None else "no such message, or too old")
            return f"550 5.1.1 <{address}>: no such address here"
        if item.returns >= RETURNS_PER_MESSAGE:
            return f"550 5.7.1 <{address}>: this address has taken all the reports it takes"
        if declared_size(envelope.mail_options) > MAX_REPORT_SIZE:  # said at MAIL FROM (RFC 1870): no need to send it
            return TOO_LARGE.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def data(self, envelope: Envelope, raw: bytes, peer_host: str, body: BodyWriter | None = None) -> str:
        """``raw`` is the message, or with ``body`` (a message past the large
        threshold, its body already in the blob store: admission/draining.py)
        its header section."""
        address = envelope.rcpt_tos[0]
        found = self.verp.verify(address)
        if found is None:  # RCPT checked it: only a change to aiosmtpd could get here
            return f"550 5.1.1 <{address}>: no such address here"
        if len(raw) + (body.size if body is not None else 0) > MAX_REPORT_SIZE:
            return TOO_LARGE.format(address=address)
        arrival = inbound.arrival(raw, master_key=self.master_key, mail_from=envelope.mail_from or "", sender="",
                                  firm_domain=found.domain, rcpt_tos=[address], peer=peer_host,
                                  trusted_peer=False, now=self.clock(), body=body)
        async with in_transaction():
            # The count and the insert commit together: the cap holds however
            # many sessions send at once.
            taken = await OutboundMessage.filter(id=found.outbound_id, returns__lt=RETURNS_PER_MESSAGE) \
                .update(returns=F("returns") + 1)
            if taken:
                await InboundMessage.create(**arrival.fields())
                await arrival.raw().save()
        if not taken:
            return f"550 5.7.1 <{address}>: this address has taken all the reports it takes"
        if body is not None:
            body.taken = True  # its row is committed: the queue deletes it once done
        log.info("queued %s for %s size=%d peer=%s", arrival.queue_id, found, arrival.size, peer_host)
        self.on_queued.set()
        return f"250 2.0.0 Ok: queued as {arrival.queue_id}"
