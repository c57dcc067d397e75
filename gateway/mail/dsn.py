"""What came back to a bounce address: a delivery status notification
(RFC 3464 multipart/report), an automatic reply (RFC 3834), or anything
else, read into a Report.

Everything here is written by someone else's server, or by whoever holds
the bounce address, so it is read defensively: only the fields we act on,
each reduced to one short line; a part that does not parse makes the
message "other", which is recorded and changes nothing. The verdict of a
DSN is its per-recipient Action (RFC 3464 2.3.3): "failed" is permanent,
"delayed" is only news; a 5.x.x Status without an Action counts as failed.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from enum import Enum

from gateway.mail.decoding import b64decode, decode_header_text, to_str, unfold

MAX_FIELD = 300
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}$")
_AUTO_REPLY_SUBJECTS = re.compile(
    r"^\s*(automatic reply|auto(?:matic)?[- ]?reply|auto:|out of (?:the )?office|r[ée]ponse automatique|"
    r"absence|abwesenheitsnotiz|automatische antwort)", re.IGNORECASE)


class Kind(str, Enum):
    FAILED = "failed"  # permanent: the address does not work
    DELAYED = "delayed"  # still trying
    DELIVERED = "delivered"  # delivered, relayed or expanded (asked-for success reports)
    AUTO_REPLY = "auto-reply"  # out of office and the like
    OTHER = "other"  # none of these, or unreadable


@dataclass(frozen=True)
class Report:
    kind: Kind
    recipient: str = ""  # the address the report is about (Final-Recipient), lower case
    status: str = ""  # "5.1.1"
    diagnostic: str = ""  # the remote server's words, one line
    remote_mta: str = ""
    subject: str = ""  # of an auto-reply or an unrecognised message


def one_line(value: object, limit: int = MAX_FIELD) -> str:
    """Control characters to spaces, white space collapsed, cut to ``limit``."""
    text = "".join(" " if ord(c) < 32 or 0x7f <= ord(c) < 0xa0 or c in "\u2028\u2029" else c for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read(raw: bytes) -> Report:
    """The report a message that came to a bounce address makes."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # the parser is lenient; this is for what it still cannot take
        return Report(Kind.OTHER)
    subject = one_line(_header(message, "Subject"))
    if message.get_content_type() == "multipart/report":
        if message.get_param("report-type", "").lower() == "delivery-status":
            report = _delivery_status(message)
            if report is not None:
                return report
        return Report(Kind.OTHER, subject=subject)
    if _auto_reply(message, subject):
        return Report(Kind.AUTO_REPLY, subject=subject)
    return Report(Kind.OTHER, subject=subject)


def _header(message: Message, name: str) -> str:
    return decode_header_text(name, unfold(to_str(message.get(name, ""))))


def _auto_reply(message: Message, subject: str) -> bool:
    auto = message.get("Auto-Submitted", "").strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if message.get("Precedence", "").strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_REPLY_SUBJECTS.match(subject))


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part: the per-message
    block first, then one per recipient."""
    payload = part.get_payload()
    encoding = to_str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding not in ("base64", "quoted-printable"):
        if isinstance(payload, list):
            return [block for block in payload if isinstance(block, Message)]
        text = to_str(payload)
    else:
        # Sent encoded (RFC 3464 allows it; few do): the parser took the
        # encoded text for blocks. Put it back together and decode it.
        wire = "".join(block.as_string() for block in payload) if isinstance(payload, list) else to_str(payload)
        data = wire.encode("ascii", "replace")
        text = (b64decode(data) if encoding == "base64" else binascii.a2b_qp(data)).decode("utf-8", "replace")
    text = text.replace("\r\n", "\n")
    return [email.message_from_string(block.strip() + "\n", policy=email.policy.compat32)
            for block in re.split(r"\n\s*\n", text) if block.strip()]


def _delivery_status(message: Message) -> Report | None:
    status_parts = [p for p in message.walk() if p.get_content_type() == "message/delivery-status"]
    if not status_parts:
        return None
    blocks = _blocks(status_parts[0])
    per_message, recipients = (blocks[0], blocks[1:]) if len(blocks) > 1 else (Message(), blocks)
    reports = [_recipient(block, per_message) for block in recipients]
    reports = [r for r in reports if r is not None]
    # Our messages have one recipient; should a report name several, the
    # worst verdict stands.
    for kind in (Kind.FAILED, Kind.DELAYED, Kind.DELIVERED):
        for report in reports:
            if report.kind is kind:
                return report
    return None


def _address(field: str) -> str:
    """``rfc822; jane@client.example`` -> ``jane@client.example``."""
    kind, semicolon, value = field.partition(";")
    address = (value if semicolon else kind).strip().strip("<>").strip()
    return one_line(address, 254).lower()


def _recipient(block: Message, per_message: Message) -> Report | None:
    action = block.get("Action", "").strip().lower()
    status = block.get("Status", "").strip().split(" ")[0]
    status = status if _STATUS.match(status) else ""
    if action == "failed" or (not action and status.startswith("5")):
        kind = Kind.FAILED
    elif action == "delayed" or (not action and status.startswith("4")):
        kind = Kind.DELAYED
    elif action in ("delivered", "relayed", "expanded") or (not action and status.startswith("2")):
        kind = Kind.DELIVERED
    else:
        return None
    diagnostic = block.get("Diagnostic-Code", "")
    _type, semicolon, text = diagnostic.partition(";")
    return Report(
        kind,
        recipient=_address(block.get("Final-Recipient", "") or block.get("Original-Recipient", "")),
        status=status,
        diagnostic=one_line(text if semicolon else diagnostic),
        remote_mta=one_line(_address(block.get("Remote-MTA", "") or per_message.get("Reporting-MTA", "")), 254),
    )
