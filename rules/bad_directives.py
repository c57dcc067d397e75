"""A payment request must have all its directives right before anything is made."""

from __future__ import annotations

from gateway.mail.directives import DirectivesRejected

name = "bad-directives"
description = "Reply naming each wrong or missing directive in a payment request."


def check(message, context) -> bool:
    parsed = context.parsed_request
    if not isinstance(parsed, DirectivesRejected):
        return False
    # Record the directive names only: a message could echo a secret value.
    context.record(name, "wrong directives: " + ", ".join(e.directive for e in parsed.errors))
    return True
