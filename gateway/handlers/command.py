"""Run a mail command and answer it: the command's effects, the reply, the
notices to the people it affects and the inbound message's completion are
committed together."""

from __future__ import annotations

from typing import Awaitable, Callable

from tortoise.transactions import in_transaction

from gateway.commands import CommandError, Outcome, Run
from gateway.commands.cancel import run_cancel
from gateway.commands.help import run_help
from gateway.commands.payments import run_refund, run_setup
from gateway.commands.remind import run_remind
from gateway.commands.report import run_report
from gateway.commands.status import run_status
from gateway.commands.users import run_grant, run_revoke, run_users
from gateway.core import events
from gateway.core.models import InboundMessage
from gateway.deps import Deps
from gateway.handlers.reply import safe_subject
from gateway.inbound import queue as inbound
from gateway.mail.context import MailContext
from gateway.outbound import outbox

COMMANDS: dict[str, Callable[[Run], Awaitable[Outcome]]] = {
    "help": run_help,
    "status": run_status,
    "cancel": run_cancel,
    "remind": run_remind,
    "report": run_report,
    "refund": run_refund,
    "setup": run_setup,
    "users": run_users,
    "grant": run_grant,
    "revoke": run_revoke,
}


# Commands that only read run before the transaction: on SQLite a transaction
# holds the connection, and a big report would keep SMTP admission waiting.
READ_ONLY = {"help", "status", "users", "report"}


async def _outcome(run: Run, name: str) -> Outcome:
    command = COMMANDS.get(name)
    return await command(run) if command else await run_help(run, unknown=name)


async def run_command(deps: Deps, queued: InboundMessage, context: MailContext) -> None:
    name, now, firm = context.command.name, context.now, context.firm
    run = Run(deps, context)
    refused: CommandError | None = None
    read_only = name in READ_ONLY or name not in COMMANDS  # unknown words get help
    if read_only:
        try:
            outcome = await _outcome(run, name)
        except CommandError as exc:
            refused = exc
    async with in_transaction():
        if not read_only:
            try:
                # A savepoint: a command refused half-way leaves nothing behind.
                async with in_transaction():
                    outcome = await _outcome(run, name)
            except CommandError as exc:
                refused = exc
        if refused is not None:
            outcome = Outcome(f"Not done: {safe_subject(context)}", [str(refused)])
            await events.record(now, context.sender, "command.refused", firm=firm, command=name,
                                reason=str(refused)[:200], queue_id=queued.id)
        else:
            await events.record(now, context.sender, "command", firm=firm, command=name, queue_id=queued.id)
        reply = deps.composer.notice(firm_domain=firm.domain, firm_name=firm.name, to=context.sender,
                                     subject=outcome.subject, paragraphs=outcome.paragraphs,
                                     in_reply_to=context.message.message_id, now=now)
        for filename, content_type, data in outcome.attachments:
            maintype, _, subtype = content_type.partition("/")
            reply.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        await outbox.enqueue(reply, master_key=deps.master_key, kind="command-reply", now=now)
        for notice in outcome.notices:
            told = deps.composer.notice(firm_domain=firm.domain, firm_name=firm.name, to=notice.to,
                                        subject=notice.subject, paragraphs=notice.paragraphs, now=now)
            await outbox.enqueue(told, master_key=deps.master_key, kind="command-notice", now=now)
        for message, kind in outcome.mails:
            await outbox.enqueue(message, master_key=deps.master_key, kind=kind, now=now)
        await inbound.finish(queued, f"command {name}", now)
    deps.outbox_wake.set()
