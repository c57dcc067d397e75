"""The queue runner: claim a queued message, parse it, run the chain,
hand it to a handler (what came to a bounce address goes to the bounce
handler instead, past the chain). A message that fails MAX_ATTEMPTS times (an
exception, or the process dying while it held the lease) is quarantined
and logged; it is never dropped."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import traceback
from dataclasses import dataclass
from datetime import timedelta

from gateway.commands import registry
from gateway.core import events
from gateway.core.health import keep_running, outage
from gateway.core.models import InboundMessage, kind_for
from gateway.deps import Deps
from gateway.handlers import bounce
from gateway.handlers.command import run_command
from gateway.handlers.reply import reject_with_reply
from gateway.handlers.request import create_request
from gateway.inbound import chain, large, queue as inbound
from gateway.inbound.chain import Action
from gateway.mail import context as mail_context
from gateway.mail.parse import ParsedMail, parse as parse_mail, parse_split

log = logging.getLogger("clienttrack.runner")

RETRY_AFTER = timedelta(seconds=30)
# The largest message parsed on the database's thread in the claim's
# hand-off (QueueRunner._read_ahead): parsing holds that thread about 1 ms
# a 100 KB (every statement of this process waits meanwhile: the other
# runners', the web's), so a larger one is parsed on asyncio's pool.
READ_AHEAD_MOST = 512 * 1024


@dataclass(frozen=True)
class ReadAhead:
    """What QueueRunner._read_ahead made of a message on the database's
    thread: the parsed message and its directory, or what failed."""

    message: ParsedMail | None = None
    directory: mail_context.Directory | None = None
    failed: Exception | None = None

    def parsed(self) -> ParsedMail:
        """The parsed message; raises what failed, as parsing it here would have."""
        if self.failed is not None:
            raise self.failed
        assert self.message is not None
        return self.message


class QueueRunner:
    def __init__(self, deps: Deps, retry_after: timedelta = RETRY_AFTER) -> None:
        self.deps = deps
        self.lease = timedelta(seconds=deps.settings.lease_seconds)
        self.owner = str(deps.owner)
        self.retry_after = retry_after
        # Messages a database or disk error left leased to this process (the
        # lease keeper renews them while it lives): handed back before
        # anything else once the database answers again.
        self.let_go: set[str] = set()

    async def run(self, name: str, stopping: asyncio.Event, idle_seconds: float = 1.0) -> None:
        await keep_running(name, self.process_next, stopping=stopping, health=self.deps.health,
                           idle_seconds=idle_seconds, wake=self.deps.inbound_wake)

    async def process_next(self) -> bool:
        """Process one message if one is due; False when the queue is idle.
        A database or disk error is raised (the loop backs off and retries;
        the message is handed back at the next step that can), not counted
        against the message."""
        if self.let_go:
            handing = sorted(self.let_go)
            await inbound.hand_back(handing, self.owner)
            self.let_go.difference_update(handing)
        claimed = await inbound.claim_and_read(self.deps.clock(), self.lease, self.owner, self._read_ahead)
        if claimed is None:
            return False
        queued, ahead = claimed
        try:
            with self.deps.mail_coming.working():
                await self._work_on(queued, ahead)
        except Exception as exc:
            if outage(exc):
                self.let_go.add(queued.id)
            raise
        return True

    def _read_ahead(self, connection: sqlite3.Connection, queued: InboundMessage) -> ReadAhead | None:
        """On the database's thread, in the claim's hand-off (SQLite): the
        message opened and parsed, and the directory read for it, which
        otherwise took a trip to asyncio's pool and one back to this thread,
        each through the event loop. Only reads: the claim has committed,
        and a failure here is raised where parsing would have raised it
        (process). None for a message read as before: one to quarantine (a
        message that kills its runner must not be parsed again), a bounce,
        one over READ_AHEAD_MOST, a large one (its body in the blob store)."""
        if (queued.attempts > inbound.MAX_ATTEMPTS or bounce.is_bounce(queued) or queued.size > READ_AHEAD_MOST
                or queued.body_blob):
            return None
        try:
            message = parse_split(inbound.open_raw(queued, self.deps.master_key))
            return ReadAhead(message, mail_context.directory_on_sqlite(
                connection, queued.firm_domain, queued.sender, message.message_id))
        except Exception as exc:
            return ReadAhead(failed=exc)

    async def _work_on(self, queued: InboundMessage, ahead: ReadAhead | None = None) -> None:
        if queued.attempts > inbound.MAX_ATTEMPTS:
            await self._quarantine(queued, f"claimed {queued.attempts} times without finishing (the runner died)")
            return
        try:
            await self.process(queued, ahead)
            if queued.body_blob:
                await inbound.forget_body(queued, self.deps.blobs)
        except inbound.LeaseLost as exc:
            log.warning("%s; its records were not committed", exc)
        except Exception as exc:
            if outage(exc):
                raise
            error = traceback.format_exc()
            log.error("queue %s: attempt %d failed:\n%s", queued.id, queued.attempts, error)
            if queued.attempts >= inbound.MAX_ATTEMPTS:
                await self._quarantine(queued, error)
            else:
                await inbound.release(queued, error, self.deps.clock() + self.retry_after)

    async def process(self, queued: InboundMessage, ahead: ReadAhead | None = None) -> None:
        """``ahead``: the message parsed and its directory read in the claim's hand-off (_read_ahead)."""
        deps = self.deps
        if ahead is not None:
            await self._decide(queued, ahead.parsed(), None, ahead.directory)
            return
        if bounce.is_bounce(queued):  # came to a bounce address: never the chain, never answered
            await bounce.process_bounce(deps, queued)
            return
        raw = inbound.open_raw(queued, deps.master_key)
        taken = None
        if queued.body_blob:  # a large message: never read whole if it can be helped (inbound/large.py)
            taken = await large.read_large(deps, queued, raw)
            raw = taken.skeleton if taken is not None else await large.read_whole(deps, queued, raw)
        try:
            if taken is not None:
                message = await asyncio.to_thread(parse_mail, raw, taken.elided)
            else:
                message = await asyncio.to_thread(parse_split, raw)
            await self._decide(queued, message, taken)
        finally:
            if taken is not None:
                await taken.discard()  # what the request did not take (its files are then the request's)

    async def _decide(self, queued: InboundMessage, message: ParsedMail, taken: large.Taken | None,
                      directory: mail_context.Directory | None = None) -> None:
        deps = self.deps
        command = registry.parse_command(message.subject)
        # Who sent it to which firm: as admission authenticated and stored them.
        context = await mail_context.load(
            message,
            sender=queued.sender,
            queue_id=queued.id,
            envelope_from=queued.mail_from,
            firm_domain=queued.firm_domain,
            kind=kind_for(queued.rcpt_tos),
            trusted_peer=queued.trusted_peer,
            now=deps.clock(),
            request_ttl_days=deps.settings.request_ttl_days,
            command=command,
            needed_level=registry.level_needed(command),
            directory=directory,
        )
        decision = chain.run(chain.INCOMING, message, context)
        log.info("queue %s from %s: %s %s", queued.id, context.sender, decision.action.value,
                 "; ".join(reason for _, reason in context.reasons))
        if decision.action is Action.ACCEPT:
            await create_request(deps, queued, context, taken)
        elif decision.action is Action.COMMAND:
            await run_command(deps, queued, context)
        elif decision.action is Action.REPLY:
            await reject_with_reply(deps, queued, context, decision.rule, decision.reply)
        else:
            await inbound.finish(queued, f"discarded by {decision.rule}", context.now)

    async def _quarantine(self, queued: InboundMessage, error: str) -> None:
        now = self.deps.clock()
        await inbound.quarantine(queued, error, now)
        await events.record(now, "system", "inbound.quarantined", queue_id=queued.id, attempts=queued.attempts)
        log.error("queue %s quarantined after %d attempts", queued.id, queued.attempts)
