"""help: what this sender may do, with examples."""

from __future__ import annotations

from gateway.commands import Outcome, Run
from gateway.core.models import Level
from gateway.outbound.compose import EXAMPLE_MESSAGE_SUBJECT, EXAMPLE_SUBJECT

name = "help"
level = Level.NONE
example = "help"
read_only = True


async def run(run: Run) -> Outcome:
    # Imported here, not above: the registry imports this module.
    from gateway.commands import registry

    firm, sender_level = run.context.firm, run.context.level
    paragraphs = [f"You are \"{sender_level.value}\" at {firm.name}."]
    if sender_level.allows(Level.SEND):
        paragraphs.append(
            f"To request a payment, write to {firm.gateway_address} with the invoice attached and a subject like:\n"
            f"    {EXAMPLE_SUBJECT}"
        )
        paragraphs.append(
            f"To send a secure message without payment (documents, questions), write to {firm.secure_address} "
            f"with the same directives less the amount, like:\n    {EXAMPLE_MESSAGE_SUBJECT}"
        )
    paragraphs.append("Commands you can use (write them as the subject):\n"
                      + "\n".join(f"    {command.example}" for command in registry.allowed(sender_level)))
    if sender_level is Level.NONE:
        paragraphs.append("Ask one of the firm's admins for a higher level: " + (", ".join(run.context.admins) or "-"))
    return Outcome(f"Help: {firm.gateway_address}", paragraphs)
