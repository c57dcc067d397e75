"""Mail commands: the subject's first word names one. Each is a module in
this package, listed in registry.py; its ``run`` reads the sender's context
and returns what to say (an Outcome), or raises CommandError. perform.py
commits its effects, the reply and any notices to the people it affects in
one transaction, for the mail handler (gateway/handlers/command.py) and for
the dashboard's buttons (web/staff/), which run the same commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from gateway.core.models import Firm, Level, PaymentRequest, Staff
from gateway.deps import Deps
from gateway.mail.context import Command, MailContext


class CommandError(Exception):
    """The command cannot be done; the message tells the sender why and how."""


@dataclass(frozen=True)
class Notice:
    to: str
    subject: str
    paragraphs: list[str]


@dataclass(frozen=True)
class Mail:
    """Mail a command sends besides its reply (the client's mail again...):
    queued with its request, so a bounce of it comes back to the request,
    and who hears of a delivery failure."""

    message: EmailMessage
    kind: str
    request: PaymentRequest | None = None
    notify_on_failure: str = ""


@dataclass
class Outcome:
    subject: str
    paragraphs: list[str]
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    # Told to the people the command affects (a colleague granted a level...).
    notices: list[Notice] = field(default_factory=list)
    # Other mail the command sends (a reminder to the client...).
    mails: list[Mail] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """Who runs a command from somewhere other than mail (the dashboard):
    what the commands read of a MailContext, with no message."""

    sender: str
    firm: Firm
    staff: Staff
    now: datetime
    command: Command
    admins: list[str] = field(default_factory=list)

    @property
    def level(self) -> Level:
        return self.staff.level


@dataclass(frozen=True)
class Run:
    deps: Deps
    context: MailContext | Context

    @property
    def args(self) -> tuple[str, ...]:
        return self.context.command.args

    def arg(self, index: int, what: str, example: str) -> str:
        if len(self.args) <= index:
            raise CommandError(f"Say which {what}, for example: {example}")
        return self.args[index]
