"""Running a command and committing what it did: its effects (in a
savepoint, so a command refused half-way leaves nothing behind), the event,
the reply to the sender, the notices to the people it affects and any other
mail, in one transaction. The mail handler and the dashboard both come
here, so a button does exactly what the mail command does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from tortoise.transactions import in_transaction

from gateway.commands import CommandError, Outcome, Run, registry
from gateway.core import events
from gateway.outbound import outbox


@dataclass(frozen=True)
class Performed:
    outcome: Outcome
    refused: CommandError | None


async def perform(run: Run, *, refused_subject: str, in_reply_to: str = "",
                  also: Callable[[], Awaitable[None]] | None = None, **detail: Any) -> Performed:
    """Run the command the context names; ``also`` joins the transaction
    (the mail handler finishes the inbound message there); ``detail`` goes
    to the event (where the command came from)."""
    deps, context = run.deps, run.context
    name, now, firm = context.command.name, context.now, context.firm
    command = registry.COMMANDS[name]
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
                async with in_transaction():
                    outcome = await command.run(run)
            except CommandError as exc:
                refused = exc
        if refused is not None:
            outcome = Outcome(refused_subject, [str(refused)])
            await events.record(now, context.sender, "command.refused", firm=firm, command=name,
                                reason=str(refused)[:200], **detail)
        else:
            await events.record(now, context.sender, "command", firm=firm, command=name, **detail)
        await outbox.enqueue_notice(deps.composer, master_key=deps.master_key, kind="command-reply", now=now,
                                    firm_domain=firm.domain, firm_name=firm.name, to=context.sender,
                                    subject=outcome.subject, paragraphs=outcome.paragraphs,
                                    in_reply_to=in_reply_to, attachments=outcome.attachments)
        for notice in outcome.notices:
            await outbox.enqueue_notice(deps.composer, master_key=deps.master_key, kind="command-notice", now=now,
                                        firm_domain=firm.domain, firm_name=firm.name, to=notice.to,
                                        subject=notice.subject, paragraphs=notice.paragraphs)
        for mail in outcome.mails:
            await outbox.enqueue(mail.message, master_key=deps.master_key, kind=mail.kind, now=now,
                                 request=mail.request, notify_on_failure=mail.notify_on_failure)
        if also is not None:
            await also()
    deps.outbox_wake.set()
    return Performed(outcome, refused)
