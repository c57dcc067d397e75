"""A message delivered twice (same Message-ID, same sender) makes one request."""

from __future__ import annotations

name = "duplicate"
description = "Discard a re-delivered message that already created a request."


def check(message, context) -> bool:
    if context.already_processed:
        context.record(name, f"Message-ID {message.message_id} already made a request")
        return True
    return False
