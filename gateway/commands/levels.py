"""Mail commands: who may run which, and the words they take."""

from __future__ import annotations

from gateway.core.models import Level
from gateway.mail.directives import Command

# DESIGN.md: none < send (requests; own status/cancel/remind) < report < admin.
COMMAND_LEVELS: dict[str, Level] = {
    "help": Level.NONE,
    "status": Level.SEND,
    "cancel": Level.SEND,
    "remind": Level.SEND,
    "report": Level.REPORT,
    "refund": Level.ADMIN,
    "users": Level.ADMIN,
    "grant": Level.ADMIN,
    "revoke": Level.ADMIN,
    "setup": Level.ADMIN,
}

EXAMPLES: dict[str, str] = {
    "help": "help",
    "status": "status 1042",
    "cancel": "cancel 1042",
    "remind": "remind 1042",
    "report": "report csv last-month paid",
    "refund": "refund 1042",
    "users": "users",
    "grant": "grant colleague@firm.example send",
    "revoke": "revoke colleague@firm.example",
    "setup": "setup payments",
}


def level_needed(command: Command | None) -> Level:
    if command is None:
        return Level.SEND
    return COMMAND_LEVELS.get(command.name, Level.NONE)


def allowed_commands(level: Level) -> list[str]:
    return [name for name, needed in COMMAND_LEVELS.items() if level.allows(needed)]
