"""The queue runner: claim a queued message, parse it, run the chain,
hand it to a handler (what came to a bounce address goes to the bounce
handler instead, past the chain). A message that fails MAX_ATTEMPTS times (an
exception, or the process dying while it held the lease) is quarantined
and logged; it is never dropped."""

from __future__ import annotations

import asyncio
import logging
import traceback
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
from gateway.mail.parse import parse as parse_mail, parse_split

log = logging.getLogger("clienttrack.runner")

RETRY_AFTER = timedelta(seconds=30)


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
        queued = await inbound.claim(self.deps.clock(), self.lease, self.owner)
        if queued is None:
            return False
        try:
            with self.deps.mail_coming.working():
                await self._work_on(queued)
        except Exception as exc:
            if outage(exc):
                self.let_go.add(queued.id)
            raise
        return True

    async def _work_on(self, queued: InboundMessage) -> None:
        if queued.attempts > inbound.MAX_ATTEMPTS:
            await self._quarantine(queued, f"claimed {queued.attempts} times without finishing (the runner died)")
            return
        try:
            await self.process(queued)
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

    async def process(self, queued: InboundMessage) -> None:
        deps = self.deps
        if bounce.is_bounce(queued):  # came to a bounce address: never the chain, never answered
            await bounce.process_bounce(deps, queued)
            return
        raw = inbound.open_raw(queued, deps.master_key)
        taken = None
        if queued.body_blob:  # a large message: never read whole if it can be helped (inbound/large.py)
            taken = await large.read_large(deps, queued, raw)
            raw = taken.skeleton if taken is not None else await large.read_whole(deps, queued, raw)
        try:
            await self._decide(queued, raw, taken)
        finally:
            if taken is not None:
                await taken.discard()  # what the request did not take (its files are then the request's)

    async def _decide(self, queued: InboundMessage, raw: bytes, taken: large.Taken | None) -> None:
        deps = self.deps
        if taken is not None:
            message = await asyncio.to_thread(parse_mail, raw, taken.elided)
        else:
            message = await asyncio.to_thread(parse_split, raw)
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
