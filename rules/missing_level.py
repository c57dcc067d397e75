"""A sender may only do what their permission level allows."""

from __future__ import annotations

name = "missing-level"
description = "Reply to a sender whose permission level is too low for what they asked."


def check(message, context) -> bool:
    needed = context.needed_level
    if context.level.allows(needed):
        return False
    what = f"the {context.command.name} command" if context.command else \
        f"sending {'secure messages' if context.kind.value == 'message' else 'payment requests'}"
    context.record(name, f"{what} needs level {needed.value}; {context.sender} has {context.level.value}")
    return True
