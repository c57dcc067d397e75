"""Auto-replies, bounces and bulk mail never get an answer: no mail loops."""

from __future__ import annotations

name = "loop-guard"
description = "Discard bounces, auto-replies and bulk mail, which must never be answered."

_ROBOT_LOCAL_PARTS = ("mailer-daemon", "postmaster", "noreply", "no-reply")


def check(message, context) -> bool:
    if not context.envelope_from:
        context.record(name, "null envelope sender (a bounce)")
        return True
    if message.auto_submitted and message.auto_submitted != "no":
        context.record(name, f"Auto-Submitted: {message.auto_submitted}")
        return True
    if message.precedence in ("bulk", "junk", "list"):
        context.record(name, f"Precedence: {message.precedence}")
        return True
    local_part = context.envelope_from.lower().partition("@")[0]
    if local_part in _ROBOT_LOCAL_PARTS:
        context.record(name, f"sent by {local_part}")
        return True
    return False
