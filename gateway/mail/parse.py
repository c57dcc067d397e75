"""Read an inbound staff email exactly: subject, Message-ID, the headers the
loop guard reads, the text body and every attachment.

The raw message is parsed once by mail-parser (the library the product
owner chose); its MIME tree is walked here and every value is decoded with
the stdlib, because mail-parser is weak or lossy at exactly those places.
What counts as body and as attachment, and the pitfalls worked around:
docs/mail-parsing.md.
"""

from __future__ import annotations

import binascii
import hashlib
import email
import email.message
import email.parser
import logging
from dataclasses import dataclass, field
from email import policy as email_policy
from typing import Any, Mapping

import mailparser

from gateway.mail.decoding import (
    b64decode, content_id, decode_header_text, disposition, part_bytes, part_text, scrub, to_str, unfold, wire_bytes,
)
from gateway.mail import pieces
from gateway.mail.files import part_filename, safe_filename
from gateway.mail.htmltext import cid_references, html_to_text
from gateway.mail.tnef import is_tnef, unpack_tnef

log = logging.getLogger(__name__)

_POLICY = email_policy.default
# Values kept as long as the columns that store them take (SealedFile's
# content_type, PaymentRequest's source_message_id): bounded here, where
# they are read, rather than refused at the insert.
MAX_CONTENT_TYPE_LENGTH = 127
MAX_MESSAGE_ID_LENGTH = 998
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


@dataclass(frozen=True)
class Attachment:
    filename: str  # safe: see safe_filename()
    content_type: str  # lower-case "type/subtype"
    data: bytes
    # Taken out before parsing (pieces.py): then ``data`` is empty and this is
    # what its sink made of it (the runner's: the file, sealed and stored).
    sealed: Any = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return self.sealed.size if self.sealed is not None else len(self.data)

    def __repr__(self) -> str:  # keep logs small: no payload dump
        return (
            f"Attachment(filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={self.size})"
        )


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    subject: str
    text: str
    attachments: tuple[Attachment, ...]
    auto_submitted: str
    precedence: str


@dataclass
class _Leaf:
    part: email.message.Message
    nested: bool  # inside a forwarded message/rfc822
    content_type: str
    filename: str | None
    disposition: str


def _leaves(root: email.message.Message) -> list[_Leaf]:
    """Leaf parts in document order (iterative: no recursion limit)."""
    leaves: list[_Leaf] = []
    stack: list[tuple[email.message.Message, bool]] = [(root, False)]
    while stack:
        part, nested = stack.pop()
        ctype = part.get_content_type().lower()
        payload = part._payload  # noqa: SLF001 - get_payload() may re-decode
        if isinstance(payload, list) and ctype in _MESSAGE_TYPES:
            decoded = _reencoded_message(part, payload)
            if decoded is not None:
                payload = [decoded]
        if isinstance(payload, list):
            # multipart/* and parsed message/rfc822 (payload = [Message])
            inner_nested = nested or ctype in _MESSAGE_TYPES or not ctype.startswith("multipart/")
            children = [p for p in payload if isinstance(p, email.message.Message)]
            for child in reversed(children):
                stack.append((child, inner_nested))
            continue
        leaves.append(
            _Leaf(
                part=part,
                nested=nested,
                content_type=ctype,
                filename=part_filename(part),
                disposition=disposition(part),
            )
        )
    return leaves


def _reencoded_message(part: email.message.Message, payload: list) -> email.message.Message | None:
    """A message/rfc822 part sent base64 or quoted-printable (not allowed by
    RFC 2046, but seen): the parser read the encoded text as a message; decode
    it and parse the real one.  None when the part is not encoded that way."""
    cte = to_str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte not in ("base64", "quoted-printable") or len(payload) != 1:
        return None
    sub = payload[0]
    try:
        if not sub.keys() and not sub.is_multipart():
            wire = wire_bytes(sub)
        else:
            wire = sub.as_bytes(policy=email_policy.compat32.clone(max_line_length=0))
        if cte == "base64":
            data = b64decode(wire)
        else:
            data = binascii.a2b_qp(wire)
        return email.message_from_bytes(data)
    except Exception:  # RecursionError included: keep the parser's reading
        return None


def _is_body(leaf: _Leaf) -> bool:
    return (
        leaf.content_type in ("text/plain", "text/html")
        and leaf.disposition != "attachment"
        and leaf.filename is None
    )


def _first_header(message: email.message.Message, name: str) -> tuple[str, str]:
    """The first ``name`` header of the message, unfolded: (as written, RFC 2047 decoded)."""
    for key, value in message.raw_items():
        if key.lower() == name:
            raw = unfold(to_str(value))
            return scrub(raw).strip(), decode_header_text(key, raw).strip()
    return "", ""


class _TreeOnly(mailparser.MailParser):
    """mail-parser asked for the message's MIME tree alone
    (MailParser.message: the stdlib's compat32 tree, built under its guard
    against a message nested too deeply), not for its own pass over that
    tree. Nothing here reads what the pass finds (addresses, dates,
    Received headers, defects, its own attachment list: docs/mail-parsing.md
    says why), it leaves the tree as it was (tests/test_mailparse.py holds
    the two trees equal), and it was a third of reading a request."""

    def parse(self) -> "_TreeOnly":
        return self


def _headers_only(raw: bytes) -> email.message.Message:
    return email.parser.BytesParser(policy=email_policy.compat32).parsebytes(raw, headersonly=True)


def parse(raw: bytes, elided: Mapping[str, Any] | None = None) -> ParsedMail:
    """Parse one raw RFC 5322 message (bytes as received over SMTP), or the
    skeleton pieces.py left of one: ``elided`` maps each marker that stands
    for a part taken out to what was made of it (Attachment.sealed)."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise TypeError("parse() takes the raw message as bytes")

    message: email.message.Message
    try:
        message = _TreeOnly.from_bytes(raw).message
    except Exception as exc:  # MailParserRecursionError, or a library bug
        log.warning("mail-parser failed: %r", exc)
        try:
            message = email.message_from_bytes(raw)
        except RecursionError:
            message = None  # type: ignore[assignment]
        except Exception:
            message = None  # type: ignore[assignment]

    too_deep = False
    if message is None:
        too_deep = True
        message = _headers_only(raw)

    # Single-valued headers: the first occurrence.
    subject = " ".join(_first_header(message, "subject")[1].split())
    message_id = _bounded_message_id(_first_header(message, "message-id")[0])
    auto_submitted = _first_header(message, "auto-submitted")[1].lower()
    precedence = _first_header(message, "precedence")[1].lower()

    # ---- body and attachments -------------------------------------------
    attachments: list[tuple[str | None, str, bytes, Any]] = []
    plain: list[str] = []
    htmls: list[str] = []
    tnef_bodies: list[str] = []

    if too_deep:
        attachments.append(("message.eml", "message/rfc822", raw, None))
    else:
        try:
            leaves = _leaves(message)
        except RecursionError:  # pragma: no cover - walk is iterative
            leaves = []
        cid_refs: set[str] = set()
        html_texts: dict[int, str] = {}
        for i, leaf in enumerate(leaves):
            if leaf.content_type == "text/html" and _is_body(leaf):
                markup = part_text(leaf.part)
                html_texts[i] = markup
                cid_refs |= cid_references(markup)

        for i, leaf in enumerate(leaves):
            if _is_body(leaf):
                if leaf.nested:
                    continue  # a forwarded message's own body
                if leaf.content_type == "text/plain":
                    plain.append(part_text(leaf.part))
                else:
                    htmls.append(html_texts[i])
                continue
            cid = content_id(leaf.part)
            if (
                cid
                and cid in cid_refs
                and leaf.content_type.startswith("image/")
                and leaf.disposition != "attachment"
            ):
                continue  # inline image shown by the HTML body (logo)
            taken = elided.get(wire_bytes(leaf.part).strip().decode("ascii", "replace")) if elided else None
            if isinstance(taken, bytes):  # decoded in memory (parse_split): the part as it was
                attachments.append((leaf.filename, leaf.content_type, taken, None))
                continue
            if taken is not None:  # never TNEF: pieces.py leaves those in
                attachments.append((leaf.filename, leaf.content_type, b"", taken))
                continue
            data = part_bytes(leaf.part)
            if is_tnef(leaf.content_type, leaf.filename, data):
                unpacked = unpack_tnef(data)
                if unpacked is not None:
                    attachments.extend((*found, None) for found in unpacked.attachments)
                    if unpacked.body and not leaf.nested:
                        tnef_bodies.append(unpacked.body)
                    continue
            attachments.append((leaf.filename, leaf.content_type, data, None))

    if plain:
        text = "\n".join(plain)
    elif htmls:
        text = "\n".join(html_to_text(h) for h in htmls)
    else:
        text = "\n".join(tnef_bodies)

    final = tuple(
        Attachment(
            filename=safe_filename(name, ctype, index),
            content_type=ctype if len(ctype) <= MAX_CONTENT_TYPE_LENGTH else "application/octet-stream",
            data=data,
            sealed=taken,
        )
        for index, (name, ctype, data, taken) in enumerate(attachments, start=1)
    )

    return ParsedMail(
        message_id=message_id,
        subject=subject,
        text=text,
        attachments=final,
        auto_submitted=auto_submitted,
        precedence=precedence,
    )


def parse_split(raw: bytes) -> ParsedMail:
    """parse(raw), with the base64 attachments decoded by mail/pieces.py's
    splitter first (kept in memory) and only the skeleton left to the
    parser: the stdlib's parser reads a message a line at a time, and a
    100 KB attachment's 1,800 lines of base64 were most of what parsing a
    request cost. The same ParsedMail as parse(raw) (pieces.py takes out
    only what cannot change how the message reads); a message the splitter
    cannot follow is parsed whole."""
    try:
        split = pieces.split(raw, lambda content_type, filename: pieces.InMemory())
    except pieces.Unsplittable:
        return parse(raw)
    if not split.elided:
        return parse(raw)
    return parse(split.skeleton, split.elided)


def _bounded_message_id(message_id: str) -> str:
    """A Message-ID too long to store stands in as its digest, so a copy of
    the same message is still recognised as one."""
    if len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        return message_id
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
    return f"<{digest}@long-message-id.invalid>"
