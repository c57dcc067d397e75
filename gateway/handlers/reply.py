"""Rejected with a reply: tell the sender exactly what to fix. Each reply
the chain can choose has its builder here."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Callable

from tortoise.transactions import in_transaction

from gateway.commands import registry
from gateway.core import events
from gateway.core.models import InboundMessage
from gateway.deps import Deps
from gateway.inbound import queue as inbound
from gateway.mail.context import MailContext
from gateway.mail.directives import DirectivesRejected, redact_subject
from gateway.outbound import outbox

ReplyBuilder = Callable[[Deps, MailContext], EmailMessage]


def safe_subject(context: MailContext) -> str:
    return redact_subject(context.message.subject, context.message.text)


def missing_level(deps: Deps, context: MailContext) -> EmailMessage:
    """The level the sender has, the one needed, who can grant it and what
    they may do now."""
    firm = context.firm
    what = f"the {context.command.name} command" if context.command else \
        ("secure messages" if context.kind.value == "message" else "payment requests")
    admins = ", ".join(context.admins) or "your firm's administrator"
    may = ", ".join(command.example for command in registry.allowed(context.level)) or "nothing yet"
    return deps.composer.notice(
        firm_domain=firm.domain,
        firm_name=firm.name,
        to=context.sender,
        subject=f"Re: {safe_subject(context)}",
        paragraphs=[
            f"Your permission level for {firm.name} is \"{context.level.value}\"; "
            f"{what} needs level \"{context.needed_level.value}\".",
            f"Ask one of the firm's admins to grant it: {admins}.",
            f"What you can do now: {may}.",
        ],
        in_reply_to=context.message.message_id,
        now=context.now,
    )


def bad_directives(deps: Deps, context: MailContext) -> EmailMessage:
    """Each wrong directive named, with a correct example."""
    rejected: DirectivesRejected = context.parsed_request
    return deps.composer.rejection(
        firm_domain=context.firm.domain,
        staff_email=context.sender,
        firm_name=context.firm.name,
        original_subject_safe=safe_subject(context),
        errors=[(e.directive, e.message) for e in rejected.errors],
        in_reply_to=context.message.message_id,
        now=context.now,
        kind=context.kind.value,
    )


async def reject_with_reply(deps: Deps, queued: InboundMessage, context: MailContext, rule: str,
                            build: ReplyBuilder) -> None:
    now = context.now
    reply = build(deps, context)
    async with in_transaction():
        await outbox.enqueue(reply, master_key=deps.master_key, kind="rejection", now=now)
        await events.record(now, context.sender, "request.rejected", firm=context.firm, rule=rule,
                            reasons=[reason for _, reason in context.reasons], queue_id=queued.id)
        await inbound.finish(queued, f"rejected by {rule}", now)
    deps.outbox_wake.set()
