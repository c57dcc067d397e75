"""help: what this sender may do, with examples."""

from __future__ import annotations

from gateway.commands import Outcome, Run
from gateway.commands.levels import EXAMPLES, allowed_commands
from gateway.core.models import Level
from gateway.outbound.compose import EXAMPLE_SUBJECT



async def run_help(run: Run, unknown: str = "") -> Outcome:
    firm, level = run.context.firm, run.context.level
    paragraphs = []
    if unknown:
        paragraphs.append(f"\"{unknown}\" is not a command this gateway knows. Here is what you can do.")
    paragraphs.append(f"You are \"{level.value}\" at {firm.name}.")
    if level.allows(Level.SEND):
        paragraphs.append(
            f"To request a payment, write to {firm.gateway_address} with the invoice attached and a subject like:\n"
            f"    {EXAMPLE_SUBJECT}"
        )
    commands = allowed_commands(level)
    paragraphs.append("Commands you can use (write them as the subject):\n"
                      + "\n".join(f"    {EXAMPLES[name]}" for name in commands))
    if level is Level.NONE:
        paragraphs.append("Ask one of the firm's admins for a higher level: " + (", ".join(run.context.admins) or "-"))
    return Outcome(f"Help: {firm.gateway_address}", paragraphs)
