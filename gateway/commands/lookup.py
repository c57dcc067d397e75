"""Finding the request a command names, within what the sender may touch."""

from __future__ import annotations

import re

from gateway.commands import CommandError, Run
from gateway.core.models import Level, PaymentRequest

_REFERENCE = re.compile(r"^R(\d{1,12})$", re.IGNORECASE)


def visible(run: Run, *, all_at: Level):
    """The firm's requests, or only the sender's own below level `all_at`."""
    query = PaymentRequest.filter(firm=run.context.firm)
    if not run.context.level.allows(all_at):
        query = query.filter(sender=run.context.sender)
    return query


async def one_request(run: Run, word: str, *, all_at: Level) -> PaymentRequest:
    """The request with invoice number `word` or reference `R<id>`."""
    query = visible(run, all_at=all_at)
    reference = _REFERENCE.match(word)
    found = await (query.filter(id=int(reference[1])) if reference else query.filter(invoice=word)).order_by("-id")
    scope = "" if run.context.level.allows(all_at) else " of yours"
    if not found:
        raise CommandError(f"There is no request{scope} with invoice {word}. Send \"status\" to see the latest ones.")
    if len(found) > 1:
        refs = ", ".join(f"R{r.id} ({r.client_email}, {r.status.value})" for r in found[:10])
        raise CommandError(f"Several requests{scope} have invoice {word}: {refs}. Name one by its reference, "
                           f"for example \"{run.context.command.name} R{found[0].id}\".")
    return found[0]
