"""Run a mail command and answer it: the command's effects, the reply, the
notices to the people it affects and the inbound message's completion are
committed together."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from gateway.commands import CommandError, Outcome, Run, registry
from gateway.core import events
from gateway.core.models import InboundMessage
from gateway.deps import Deps
from gateway.handlers.reply import safe_subject
from gateway.inbound import queue as inbound
from gateway.mail.context import MailContext
from gateway.outbound import outbox


async def run_command(deps: Deps, queued: InboundMessage, context: MailContext) -> None:
    name, now, firm = context.command.name, context.now, context.firm
    command = registry.COMMANDS[name]
    run = Run(deps, context)
    refused: CommandError | None = None
    if command.read_only:
        # Before the transaction: see the registry's docstring.
        try:
            outcome = await command.run(run)
        except CommandError as exc:
            refused = exc
    async with in_transaction():
        if not command.read_only:
            try:
                # A savepoint: a command refused half-way leaves nothing behind.
                async with in_transaction():
                    outcome = await command.run(run)
            except CommandError as exc:
                refused = exc
        if refused is not None:
            outcome = Outcome(f"Not done: {safe_subject(context)}", [str(refused)])
            await events.record(now, context.sender, "command.refused", firm=firm, command=name,
                                reason=str(refused)[:200], queue_id=queued.id)
        else:
            await events.record(now, context.sender, "command", firm=firm, command=name, queue_id=queued.id)
        await outbox.enqueue_notice(deps.composer, master_key=deps.master_key, kind="command-reply", now=now,
                                    firm_domain=firm.domain, firm_name=firm.name, to=context.sender,
                                    subject=outcome.subject, paragraphs=outcome.paragraphs,
                                    in_reply_to=context.message.message_id, attachments=outcome.attachments)
        for notice in outcome.notices:
            await outbox.enqueue_notice(deps.composer, master_key=deps.master_key, kind="command-notice", now=now,
                                        firm_domain=firm.domain, firm_name=firm.name, to=notice.to,
                                        subject=notice.subject, paragraphs=notice.paragraphs)
        for message, kind in outcome.mails:
            await outbox.enqueue(message, master_key=deps.master_key, kind=kind, now=now)
        await inbound.finish(queued, f"command {name}", now)
    deps.outbox_wake.set()
