"""retention [Nd]: how long the firm keeps a request's documents (the
message and the files) after it is paid, cancelled or expired; an admin
may change it. Then they are deleted for good; the request's record and
its payments stay."""

from __future__ import annotations

from gateway.commands import CommandError, Outcome, Run
from gateway.core.models import Level
from gateway.documents import retention

name = "retention"
level = Level.ADMIN
example = "retention 90d"
read_only = False


async def run(run: Run) -> Outcome:
    firm = run.context.firm
    if run.args:
        try:
            days = retention.parse_days(" ".join(run.args))
        except retention.RetentionError as exc:
            raise CommandError(f"{str(exc)[0].upper()}{str(exc)[1:]}. For example: {example}") from None
        await retention.set_days(firm, days, run.context.now, actor=run.context.sender)
        subject = f"Retention: documents kept {days} days"
    else:
        subject = f"Retention: documents kept {firm.retention_days} days"
    return Outcome(subject, [
        f"{firm.name} keeps a request's message and files for {firm.retention_days} days after the request is "
        "paid, cancelled or expired; then they are deleted for good. The request itself, its payments and its "
        "history stay, and the client's page says the documents are no longer available and whom to ask.",
        f"To change it, send \"{example}\" (0d to {retention.MAX_DAYS}d).",
    ])

