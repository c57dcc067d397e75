"""What the rules look at: the parsed mail, the command it names, and what
the database says about its sender. Loaded once, before the chain runs, so
rules stay pure."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from gateway.core import readrows, rows
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
    directory: Directory | None = None,
) -> MailContext:
    """``directory``: what directory_on_sqlite() read for this message
    already (the queue runner reads it in the claim's hand-off), else read here."""
    firm, staff, admins, already = directory if directory is not None else \
        await _directory(firm_domain, sender, message.message_id)
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


# The firm, the sender on its staff, its admins, and whether this
# Message-ID from the sender made a request already.
Directory = tuple[Firm | None, Staff | None, list[str], bool]


async def _directory(firm_domain: str, sender: str, message_id: str) -> Directory:
    client = rows.sqlite_client()
    if client is not None:
        # The same four queries as one function on SQLite's thread (one hand-off, not four).
        return await rows.on_sqlite_thread(client, directory_on_sqlite, firm_domain, sender, message_id)
    return await _directory_by_orm(firm_domain, sender, message_id)


async def _directory_by_orm(firm_domain: str, sender: str, message_id: str) -> Directory:
    firm = await Firm.get_or_none(domain=firm_domain)
    staff = None
    admins: list[str] = []
    already = False
    if firm is not None:
        staff = await Staff.get_or_none(firm=firm, email=sender) if sender else None
        admins = await Staff.filter(firm=firm, level=Level.ADMIN).order_by("email").values_list("email", flat=True)
        if message_id and sender:
            already = await PaymentRequest.exists(firm=firm, sender=sender, source_message_id=message_id)
    return firm, staff, list(admins), already


@functools.cache
def _select(model, where: str) -> str:
    """The columns readrows reads ``model`` from (known once Tortoise has
    set up the relations: not at import)."""
    return f"SELECT {readrows.reader(model).projection} FROM {model._meta.db_table} WHERE {where} LIMIT 1"


_ADMINS = "SELECT email FROM staff WHERE firm_id = ? AND level = ? ORDER BY email"
_ALREADY = "SELECT 1 FROM payment_request WHERE firm_id = ? AND sender = ? AND source_message_id = ? LIMIT 1"


def directory_on_sqlite(connection, firm_domain: str, sender: str, message_id: str) -> Directory:
    """The directory's four queries on the ORM's SQLite connection, in its
    thread; the firm and the staff member made by readrows, not the ORM's
    per-field parsing (two thirds of this function's time)."""
    firm = connection.execute(_select(Firm, "domain = ?"), [firm_domain]).fetchone()
    if firm is None:
        return None, None, [], False
    firm = readrows.reader(Firm).made(firm)
    staff = connection.execute(_select(Staff, "firm_id = ? AND email = ?"), [firm.id, sender]).fetchone() \
        if sender else None
    admins = [row[0] for row in connection.execute(_ADMINS, [firm.id, Level.ADMIN.value])]
    already = bool(message_id and sender and connection.execute(_ALREADY, [firm.id, sender, message_id]).fetchone())
    return firm, readrows.reader(Staff).made(staff) if staff is not None else None, admins, already
