"""Only the firm's staff may use its gateway. Strangers get no reply:
answering them would send mail to whoever they pretend to be."""

from __future__ import annotations

name = "unknown-sender"
description = "Discard mail from anyone who is not on the firm's staff list."


def check(message, context) -> bool:
    if context.firm is None:
        context.record(name, "no such firm")
        return True
    if context.staff is None:
        context.record(name, f"{context.sender or 'no valid From address'} is not staff of {context.firm.domain}")
        return True
    return False
