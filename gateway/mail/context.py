"""What the rules look at: the parsed mail, the command it names, and what
the database says about its sender. Loaded once, before the chain runs, so
rules stay pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from gateway.core.models import Firm, Level, PaymentRequest, RequestKind, Staff
from gateway.core.settings import zone
from gateway.mail import directives
from gateway.mail.parse import ParsedMail


@dataclass(frozen=True)
class Command:
    """A command line from the subject: its first word and the rest."""

    name: str
    args: tuple[str, ...]


@dataclass
class MailContext:
    queue_id: str
    envelope_from: str
    # The From address that admission authenticated (InboundMessage.sender).
    sender: str
    trusted_peer: bool
    firm: Firm | None
    staff: Staff | None
    admins: list[str]
    already_processed: bool
    now: datetime
    request_ttl_days: int
    command: Command | None
    # The least level what the message asks for needs (the command's, or send).
    needed_level: Level
    message: ParsedMail
    # What a request made of this mail would be: pay@ a payment, secure@ a message.
    kind: RequestKind = RequestKind.PAYMENT
    reasons: list[tuple[str, str]] = field(default_factory=list)

    def record(self, rule: str, reason: str) -> None:
        self.reasons.append((rule, reason))

    @property
    def level(self) -> Level:
        return self.staff.level if self.staff else Level.NONE

    @cached_property
    def parsed_request(self) -> directives.PaymentDirectives | directives.DirectivesRejected:
        assert self.firm is not None
        try:
            return directives.parse_request(
                self.message.subject,
                self.message.text,
                firm_currency=self.firm.currency,
                limit_minor=self.firm.request_limit_minor,
                default_fee=self.firm.fee_by_default,
                now=self.now,
                default_ttl_days=self.request_ttl_days,
                zone=zone(self.firm.timezone),
                kind=self.kind,
                default_lang=self.firm.language,
            )
        except directives.DirectivesRejected as rejected:
            return rejected


async def load(
    message: ParsedMail,
    *,
    sender: str,
    queue_id: str,
    envelope_from: str,
    firm_domain: str,
    trusted_peer: bool,
    kind: RequestKind = RequestKind.PAYMENT,
    now: datetime,
    request_ttl_days: int,
    command: Command | None,
    needed_level: Level,
) -> MailContext:
    firm = await Firm.get_or_none(domain=firm_domain)
    staff = None
    admins: list[str] = []
    already = False
    if firm is not None:
        staff = await Staff.get_or_none(firm=firm, email=sender) if sender else None
        admins = await Staff.filter(firm=firm, level=Level.ADMIN).order_by("email").values_list("email", flat=True)
        if message.message_id and sender:
            already = await PaymentRequest.exists(firm=firm, sender=sender, source_message_id=message.message_id)
    return MailContext(
        queue_id=queue_id,
        envelope_from=envelope_from,
        sender=sender,
        trusted_peer=trusted_peer,
        firm=firm,
        staff=staff,
        admins=list(admins),
        already_processed=already,
        now=now,
        request_ttl_days=request_ttl_days,
        command=command,
        needed_level=needed_level,
        message=message,
        kind=kind,
    )
