"""The compose form as the mail a staff member would have written.

The form's fields become what the directive grammar reads
(gateway/mail/directives.py): the subject as the subject, every other
field as a ``Key: "value"`` line at the top of the body (quoted, so a value
reads back exactly, spaces and all), then a blank line and the message.
The same parse_request then checks it, so a field is wrong exactly when
the same words by mail would be, with the same sentence; and the message
built from it goes through the inbound queue like any mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from gateway.mail import directives

# A directive's errors are shown beside this field of the form.
FIELD_OF = {"to": "client", "amount": "amount", "currency": "currency", "invoice": "invoice", "pw": "password",
            "hint": "hint", "fee": "fee", "expires": "expires"}
EXPIRY_DAYS = ("7", "14", "30", "60", "90")


@dataclass
class Draft:
    """What the form holds (all text, as typed), and the files chosen."""

    client: str = ""
    subject: str = ""
    currency: str = ""
    invoice: str = ""
    amount: str = ""
    fee: bool = False
    password_choice: str = "generate"  # or "own"
    password: str = field(default="", repr=False)
    hint: str = ""
    message: str = ""
    expires_days: str = "30"
    expires_on: str = ""
    files: list[tuple[str, str, bytes]] = field(default_factory=list, repr=False)  # (name, content type, data)

    def body(self) -> str:
        """The body's key lines, a blank line, and the message. A field left
        empty is a line not written, as in a mail: the grammar says what is missing."""
        password = "auto" if self.password_choice == "generate" else self.password
        lines = []
        for key, value in (("To", self.client), ("Amount", self.amount), ("Currency", self.currency),
                           ("Invoice", self.invoice), ("Pw", password)):
            if value:
                lines.append(f"{key}: {_quoted(value)}")
        if self.hint:
            lines.append(f"Hint: {_quoted(self.hint)}")
        lines.append(f"Fee: {'yes' if self.fee else 'no'}")
        lines.append(f"Expires: {_quoted(self.expires_on or self.expires_days + 'd')}")
        return "\n".join(lines) + "\n\n" + self.message.strip() + "\n"


def _quoted(value: str) -> str:
    # The grammar takes one pair of quotes off a value: a value that is
    # itself quoted keeps its own.
    return f'"{value}"'


def one_line(value: str) -> str:
    """A single-line field as one line: a crafted form cannot add key lines."""
    return " ".join(value.split())


def check(draft: Draft, *, firm_currency: str, limit_minor: int, default_fee: bool, now: datetime,
          ttl_days: int, commands: set[str]) -> dict[str, list[str]]:
    """The errors by field; none means the gateway will take it as it is."""
    errors: dict[str, list[str]] = {}
    if draft.password_choice == "own" and any(ch in draft.password for ch in "\r\n\0"):
        # Read on, the grammar would take the rest for key lines of its own.
        return {"password": ["The password must be on one line."]}
    first = directives.strip_reply_prefixes(draft.subject).split()[:1]
    if first and first[0].lower() in commands:
        errors["subject"] = [f"A subject that starts with \"{first[0]}\" is read as that command: "
                             "start it with another word."]
    try:
        directives.parse_request(draft.subject, draft.body(), firm_currency=firm_currency, limit_minor=limit_minor,
                                 default_fee=default_fee, now=now, default_ttl_days=ttl_days)
    except directives.DirectivesRejected as rejected:
        for error in rejected.errors:
            errors.setdefault(FIELD_OF.get(error.directive, "subject"), []).append(error.message)
    return errors


def to_mail(draft: Draft, *, sender: str, gateway: str, hostname: str, now: datetime) -> EmailMessage:
    """The message the member would have sent to the firm's gateway address."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = gateway
    message["Subject"] = one_line(draft.subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=hostname)
    message.set_content(draft.body(), charset="utf-8")
    for name, content_type, data in draft.files:
        maintype, _, subtype = content_type.partition("/")
        if not subtype or maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message
