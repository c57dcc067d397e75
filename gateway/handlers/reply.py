"""Rejected with a reply: tell the sender exactly what to fix."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from gateway.commands.levels import EXAMPLES, allowed_commands, level_needed
from gateway.core import events
from gateway.core.models import InboundMessage
from gateway.deps import Deps
from gateway.inbound import queue as inbound
from gateway.mail.context import MailContext
from gateway.mail.directives import DirectivesRejected, redact_subject
from gateway.outbound import outbox


def safe_subject(context: MailContext) -> str:
    return redact_subject(context.message.subject)


async def reject_with_reply(deps: Deps, queued: InboundMessage, context: MailContext, rule: str) -> None:
    firm, message, now = context.firm, context.message, context.now
    if rule == "missing-level":
        needed = level_needed(context.command)
        what = f"the {context.command.name} command" if context.command else "payment requests"
        admins = ", ".join(context.admins) or "your firm's administrator"
        may = ", ".join(EXAMPLES[name] for name in allowed_commands(context.level)) or "nothing yet"
        reply = deps.composer.notice(
            firm_domain=firm.domain,
            firm_name=firm.name,
            to=context.sender,
            subject=f"Re: {safe_subject(context)}",
            paragraphs=[
                f"Your permission level for {firm.name} is \"{context.level.value}\"; "
                f"{what} needs level \"{needed.value}\".",
                f"Ask one of the firm's admins to grant it: {admins}.",
                f"What you can do now: {may}.",
            ],
            in_reply_to=message.message_id,
            now=now,
        )
    else:
        rejected: DirectivesRejected = context.parsed_request
        reply = deps.composer.rejection(
            firm_domain=firm.domain,
            staff_email=context.sender,
            firm_name=firm.name,
            original_subject_safe=safe_subject(context),
            errors=[(e.directive, e.message) for e in rejected.errors],
            in_reply_to=message.message_id,
            now=now,
        )
    async with in_transaction():
        await outbox.enqueue(reply, master_key=deps.master_key, kind="rejection", now=now)
        await events.record(now, context.sender, "request.rejected", firm=firm, rule=rule,
                            reasons=[reason for _, reason in context.reasons], queue_id=queued.id)
        await inbound.finish(queued, f"rejected by {rule}", now)
    deps.outbox_wake.set()
