"""The mail commands, one module each, registered here in the order help
lists them. The subject's first word names one.

A command module declares ``name``; ``level``, the least level that may run
it (send runs status, cancel and remind on its own requests; a higher level
on the firm's); ``example``, a subject that runs it, shown in help and in
replies; ``read_only``, True when it changes nothing, so it runs before the
transaction (on SQLite a transaction holds the connection, and a big report
would keep SMTP admission waiting); and ``async def run(run) -> Outcome``;
optionally ``aliases``, other first words that run it.
Help, the level check (rules/missing_level.py, through the message's
context) and the dispatcher (handlers/command.py) read COMMANDS.
"""

from __future__ import annotations

from types import ModuleType

from gateway.commands import (
    cancel, dashboard, grant, help, refund, remind, reminders, report, resend, retention, revoke, setup, status,
    surcharge,
    users,
)
from gateway.core.models import Level
from gateway.mail.context import Command
from gateway.mail.directives import strip_reply_prefixes

COMMANDS: dict[str, ModuleType] = {
    command.name: command
    for command in (help, dashboard, status, cancel, remind, resend, report, refund, users, grant, revoke, setup,
                    surcharge, retention, reminders)
}
# Other words for a command ("login" for dashboard), to its name.
WORDS: dict[str, str] = {
    **{alias: command.name for command in COMMANDS.values() for alias in getattr(command, "aliases", ())},
    **{name: name for name in COMMANDS},
}


def parse_command(subject: str) -> Command | None:
    """The command the subject's first word names, or None for a payment request.

    A subject carrying a password directive is always a payment request,
    even if it starts with a command word ("Status report ... pw=x"): a
    command never needs one, and the password must not end up in a reply.
    """
    words = strip_reply_prefixes(subject).split()
    if not words or words[0].lower() not in WORDS:
        return None
    if any(word.lower().startswith(("pw=", "password=")) for word in words):
        return None
    return Command(WORDS[words[0].lower()], tuple(words[1:]))


def level_needed(command: Command | None) -> Level:
    """The level a message needs: its command's, or send for a payment request."""
    return COMMANDS[command.name].level if command else Level.SEND


def allowed(level: Level) -> list[ModuleType]:
    """The commands a sender at ``level`` may run, in help's order."""
    return [command for command in COMMANDS.values() if level.allows(command.level)]
