"""Mail commands. `help` tells the sender what they may do, with examples;
a command word we do not know yet also gets the help reply."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from gateway import events, inbound, outbox
from gateway.commands import EXAMPLES, allowed_commands
from gateway.context import MailContext
from gateway.deps import Deps
from gateway.models import InboundMessage

REQUEST_EXAMPLE = 'Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint="Dog\'s name" +fee'


def help_paragraphs(context: MailContext) -> list[str]:
    firm, level = context.firm, context.level
    lines = [f"You are \"{level.value}\" at {firm.name}."]
    if level.allows(level.SEND):
        lines.append(
            f"To request a payment, write to {firm.gateway_address} with the invoice attached and, in the subject: "
            f"{REQUEST_EXAMPLE}"
        )
    lines.append("Commands you can use (the subject's first word): "
                 + "; ".join(EXAMPLES[name] for name in allowed_commands(level)) + ".")
    return lines


async def run_command(deps: Deps, queued: InboundMessage, context: MailContext) -> None:
    message, now = context.message, context.now
    reply = deps.composer.notice(
        firm_domain=context.firm.domain,
        to=context.sender,
        subject=f"Help: {context.firm.gateway_address}",
        paragraphs=help_paragraphs(context),
        in_reply_to=message.message_id,
        now=now,
    )
    async with in_transaction():
        await outbox.enqueue(reply, master_key=deps.master_key, kind="command-reply", now=now)
        await events.record(now, context.sender, "command", firm=context.firm, command=context.command.name,
                            queue_id=queued.id)
        await inbound.finish(queued, f"command {context.command.name}", now)
    deps.outbox_wake.set()
