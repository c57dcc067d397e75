"""A subject whose first word is a command is a command, not a request."""

from __future__ import annotations

name = "is-command"
description = "Route mail whose subject starts with a command word to the command handler."


def check(message, context) -> bool:
    if context.command is None:
        return False
    context.record(name, f"command {context.command.name}")
    return True
