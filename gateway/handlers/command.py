"""Run a mail command and answer it: the command's effects, the reply, the
notices to the people it affects (gateway/commands/perform.py) and the
inbound message's completion are committed together."""

from __future__ import annotations

from gateway.commands import Run
from gateway.commands.perform import perform
from gateway.core.models import InboundMessage
from gateway.deps import Deps
from gateway.handlers.reply import safe_subject
from gateway.inbound import queue as inbound
from gateway.mail.context import MailContext


async def run_command(deps: Deps, queued: InboundMessage, context: MailContext) -> None:
    name, now = context.command.name, context.now

    async def finish() -> None:
        await inbound.finish(queued, f"command {name}", now)

    await perform(Run(deps, context), refused_subject=f"Not done: {safe_subject(context)}",
                  in_reply_to=context.message.message_id, also=finish, queue_id=queued.id)
