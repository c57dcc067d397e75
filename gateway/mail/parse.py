"""Read an inbound staff email exactly: headers, text body and attachments.

The raw message is parsed once, by ``mailparser.parse_from_bytes`` (the
library the product owner chose).  Its MIME tree (a stdlib compat32
``email.message.Message``) is then walked here, and every value the gateway
relies on is decoded with the stdlib ``email`` package using
``email.policy.default`` semantics, because mail-parser is weak or lossy at
exactly those places (see "mail-parser pitfalls" below).

Decisions
---------
* **Body**: the text/plain parts of the message itself, in order, joined by
  a newline.  If there is none, the text/html parts rendered to plain text.
  If there is none either, the body carried inside a TNEF ``winmail.dat``
  (plain, else HTML, else compressed RTF).  CRLF and lone CR become ``\\n``.
* **Attachments**: every leaf part that is not a body part, in document
  order, except an *inline cid image*: an ``image/*`` part whose Content-ID
  is referenced (``cid:``) by an HTML body of the message and whose
  Content-Disposition is not ``attachment`` (Outlook signature logos).  A
  part with ``Content-Disposition: attachment`` or with a file name is an
  attachment; so is any other non-body leaf (e.g. an unnamed PDF or a
  text/calendar part): nothing is dropped silently.
* **TNEF** (``application/ms-tnef``, ``application/vnd.ms-tnef``, or a
  ``winmail.dat`` with the TNEF signature) is unpacked with tnefparse; its
  files replace it.  A TNEF stream that does not parse, whose framing or
  checksums are wrong, or that holds neither files nor a body, is kept as-is
  (as ``winmail.dat``): data is never lost.  Embedded Outlook messages inside
  a TNEF are unpacked the same way.
* **Forwarded messages** (``message/rfc822``, ``message/global``): their
  attachments are included, after flattening, at the place of the forwarded
  message; the forwarded message itself is not listed as a file, and its body
  text does not go into ``text`` (directives only come from the outer mail).
* **From**: ``from_address`` is the lower-cased addr-spec of the *first*
  ``From`` header.  It is set only when that header holds exactly one
  mailbox and mail-parser and the stdlib agree on it; otherwise it is ``""``
  (fail closed: e.g. ``From: boss@firm.com <evil@x.com>`` is read as
  boss@firm.com by the stdlib but as evil@x.com by mail-parser), and
  ``from_name`` (the decoded display name) is then ``""`` too.  Every
  ``From`` header is reported, undecoded, in ``from_headers``.
* **Single-valued headers** (Subject, Message-ID, Auto-Submitted, ...) use
  the first occurrence; all occurrences stay available in ``headers``.
* **File names** are made safe (see :func:`safe_filename`); duplicates are
  kept as they are.
* Malformed input never raises: broken base64 is decoded best effort,
  unknown charsets decode as UTF-8 with replacement characters, a message
  nested too deeply to parse yields its headers and the whole raw message as
  one ``message.eml`` attachment.

mail-parser pitfalls (4.8) found while writing this
----------------------------------------------------
* Attachment ``payload`` is base64 *wire text*, not bytes; and for parts
  that were not base64 it is a re-encoding.
* Inline cid images are reported as attachments named after their
  Content-ID (``"<logo@x>"``); a named inline text part is both body and
  attachment; an unnamed ``Content-Disposition: attachment`` part gets a
  *random* name with a ``.txt`` extension (``"jhqsgljati.txt"``), so output
  is not even deterministic; a ``message/rfc822`` attachment is flattened
  to text.  ``text_plain`` also collects the bodies of forwarded messages.
* Header decoding (``subject`` etc.) decodes with ``errors="ignore"``:
  bytes in an unknown charset or invalid UTF-8 silently vanish
  (``=?x-unknown?q?caf=E9?=`` -> ``"caf"``).  A repeated header comes back
  as a list instead of a str.
* ``safe_filename`` may be ``None`` and only strips directories: leading
  dots, control characters, bidi overrides (U+202E) and non-NFC names pass.
* Address parsing disagrees with the stdlib on malformed From headers (see
  above), hence the cross-check.

stdlib / tnefparse pitfalls worked around
------------------------------------------
* ``email.policy.default`` truncates an unquoted file name containing spaces
  (``filename=report 2026.pdf`` -> ``"report"``) and drops an unquoted
  RFC 2047 file name; compat32 parameter parsing (used here) does not.
* compat32 ``get_payload(decode=True)`` does not strip the
  Content-Transfer-Encoding value: ``"base64 "`` returns the base64 text.
* ``get_payload()`` without decode re-decodes 8-bit bytes through the
  declared charset (lossy); raw bytes are read from the parsed part instead.
* tnefparse strips trailing NUL bytes of MAPI binary properties and only
  logs bad checksums; ``TNEFAttachment.name`` decodes the 8.3 name as UTF-8
  and raises on code-page names.  Attachment bytes are therefore taken from
  the TNEF ``attAttachData`` records, whose framing and checksums are
  verified here.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.message
import email.parser
import html
import logging
import mimetypes
import re
import struct
import unicodedata
from dataclasses import dataclass, field
from email import policy as email_policy
from html.parser import HTMLParser
from urllib.parse import unquote

import mailparser
from tnefparse import TNEF

log = logging.getLogger(__name__)

__all__ = [
    "Attachment",
    "MailHeaders",
    "ParsedMail",
    "parse",
    "safe_filename",
    "html_to_text",
]

_POLICY = email_policy.default
_MAX_FILENAME_BYTES = 255
_MAX_EXTENSION_BYTES = 32
_MAX_TNEF_DEPTH = 8
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_TNEF_SIGNATURE = 0x223E9F78
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


# --------------------------------------------------------------------------
# Public data model
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str  # safe: see safe_filename()
    content_type: str  # lower-case "type/subtype"
    data: bytes

    def __repr__(self) -> str:  # keep logs small: no payload dump
        return (
            f"Attachment(filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={len(self.data)})"
        )


@dataclass(frozen=True)
class MailHeaders:
    """All top-level header fields, in message order.

    Names compare case-insensitively.  ``header_values`` gives RFC 2047
    decoded, unfolded values; ``raw_header_values`` the undecoded ones
    (unfolded, 8-bit bytes read as UTF-8).
    """

    items: tuple[tuple[str, str, str], ...] = ()  # (name, raw, decoded)

    def header_values(self, name: str) -> list[str]:
        key = name.lower()
        return [dec for n, _raw, dec in self.items if n.lower() == key]

    def raw_header_values(self, name: str) -> list[str]:
        key = name.lower()
        return [raw for n, raw, _dec in self.items if n.lower() == key]

    def get(self, name: str, default: str = "") -> str:
        """First decoded value of ``name``, or ``default``."""
        values = self.header_values(name)
        return values[0] if values else default

    def names(self) -> list[str]:
        """Header names in order of first appearance, as spelt there."""
        seen: dict[str, str] = {}
        for n, _raw, _dec in self.items:
            seen.setdefault(n.lower(), n)
        return list(seen.values())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(n.lower() == key for n, _r, _d in self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    from_address: str
    from_name: str
    from_headers: tuple[str, ...]
    reply_to: str
    subject: str
    text: str
    attachments: tuple[Attachment, ...]
    auto_submitted: str
    precedence: str
    headers: MailHeaders = field(default_factory=MailHeaders)
    # Parser defects (stdlib and mail-parser), for rules that want to refuse
    # malformed mail.  Informational only.
    defects: tuple[str, ...] = ()

    def header_values(self, name: str) -> list[str]:
        return self.headers.header_values(name)


# --------------------------------------------------------------------------
# Small text helpers
# --------------------------------------------------------------------------


def _scrub(text: str) -> str:
    """Turn surrogate-escaped 8-bit bytes into text (UTF-8, else U+FFFD)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    data = text.encode("utf-8", "surrogateescape") if _only_escapes(text) else None
    if data is not None:
        return data.decode("utf-8", "replace")
    # Lone surrogates that are not escapes (e.g. from a broken codec).
    return text.encode("utf-8", "replace").decode("utf-8")


def _only_escapes(text: str) -> bool:
    return all(not ("\ud800" <= c <= "\udfff") or "\udc80" <= c <= "\udcff" for c in text)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n|\r", "", value)


def _to_str(value) -> str:
    """A stored header value (str with surrogate escapes, or Header) as str."""
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:  # pragma: no cover - defensive
        return ""


_ASCII_NAMES = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "646", "iso646-us"})
_LATIN1_NAMES = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "iso_8859-1"})


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode body/name bytes; unknown or unusable charsets -> UTF-8 + U+FFFD."""
    cs = (charset or "").strip().strip("\"'").lower()
    text = None
    if cs in _ASCII_NAMES or not cs:
        # Undeclared or mislabelled 8-bit text is nearly always UTF-8.
        text = data.decode("utf-8", "replace")
    elif cs in _LATIN1_NAMES:
        # As browsers do: ISO-8859-1 labels carry windows-1252 in practice.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        try:
            if not codecs.lookup(cs)._is_text_encoding:  # base64, rot13, ...
                raise LookupError(cs)
            text = data.decode(cs, "replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            text = data.decode("utf-8", "replace")
    return _scrub(text)


def _decode_header_text(name: str, raw: str) -> str:
    """RFC 2047 decode an unfolded header value as unstructured text."""
    try:
        # Any name outside the registry gives UnstructuredHeader semantics,
        # which keeps comments and quotes and decodes every encoded word.
        value = str(_POLICY.header_factory("x-decode", raw))
    except Exception:  # the stdlib header parser has had crash bugs
        try:
            from email.header import decode_header

            value = ""
            for chunk, cs in decode_header(raw):
                value += decode_bytes(chunk, cs) if isinstance(chunk, bytes) else chunk
        except Exception:
            value = raw
    return _scrub(value)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------
# File names
# --------------------------------------------------------------------------

_MIME = mimetypes.MimeTypes()  # built-in table only: same on every machine
_EXTENSIONS = {
    "application/octet-stream": ".bin",
    "application/pdf": ".pdf",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/zip": ".zip",
    "application/xml": ".xml",
    "application/json": ".json",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pgp-signature": ".asc",
    "application/vnd.ms-excel": ".xls",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/tiff": ".tif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
    "message/global": ".eml",
}
# Characters that NFKC (applied by some later tool) would turn into / or \.
_SEPARATOR_LOOKALIKES = str.maketrans({"\uff0f": "_", "\uff3c": "_", "\u2215": "_", "\u2044": "_", "\u29f8": "_", "\u29f9": "_"})


def extension_for(content_type: str) -> str:
    ct = (content_type or "").lower()
    ext = _EXTENSIONS.get(ct) or _MIME.guess_extension(ct, strict=False)
    return ext or ".bin"


def safe_filename(name: str | None, content_type: str = "application/octet-stream", index: int = 1) -> str:
    """A file name safe to show and to store.

    No directory parts (``/`` or ``\\``; the last component is kept), no
    control or format characters (tabs/newlines become spaces; bidi
    overrides, zero-width and NUL are removed), no leading dots or spaces,
    NFC-normalised, at most 255 UTF-8 bytes with the extension kept.  Never
    empty: ``attachment-<index><ext>`` with the content type's extension.
    """
    text = _scrub(name or "")
    text = unicodedata.normalize("NFC", text)
    cleaned = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r\x0b\x0c\x85" or cat in ("Zl", "Zp"):
            cleaned.append(" ")
        elif cat in ("Cc", "Cf", "Cs"):
            continue
        else:
            cleaned.append(ch)
    text = "".join(cleaned)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = text.translate(_SEPARATOR_LOOKALIKES)
    text = text.strip().lstrip(". ").strip()
    if not text:
        return f"attachment-{index}{extension_for(content_type)}"
    return _clamp(text)


def _clamp(name: str) -> str:
    if len(name.encode("utf-8")) <= _MAX_FILENAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(("." + ext).encode("utf-8")) > _MAX_EXTENSION_BYTES:
        stem, ext = name, ""
    else:
        ext = "." + ext
    budget = _MAX_FILENAME_BYTES - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip()
    return unicodedata.normalize("NFC", stem + ext)


def _collapse_rfc2231(value) -> str:
    if not isinstance(value, tuple):
        return value if isinstance(value, str) else ""
    charset, _language, text = value
    # compat32 percent-decodes into latin-1 code points (one per byte).
    data = b"".join(bytes([ord(c)]) if ord(c) < 256 else c.encode("utf-8") for c in text)
    return decode_bytes(data, charset) if charset else data.decode("utf-8", "replace")


def _part_filename(part: email.message.Message) -> str | None:
    """The decoded file name of a part, or None.

    compat32 parameter parsing is used (it keeps unquoted names with spaces
    and unquoted encoded words, which policy.default drops), on a header
    view whose 8-bit bytes are read as UTF-8, then RFC 2231 / RFC 2047 are
    decoded without ever dropping bytes.
    """
    view = email.message.Message()
    for hname, hvalue in part.raw_items():
        if hname.lower() in ("content-type", "content-disposition"):
            view[hname] = _scrub(_unfold(_to_str(hvalue)))
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = view.get_param(param, None, header=header)
        except Exception:
            value = None
        if value is None:
            continue
        if isinstance(value, tuple):  # RFC 2231 (charset, language, text)
            return _scrub(_collapse_rfc2231(value))
        value = _scrub(value)  # get_param() already unquoted it
        if "=?" in value:
            value = _decode_header_text("x", value)
        return value
    return None


# --------------------------------------------------------------------------
# Part payloads
# --------------------------------------------------------------------------


def _wire_bytes(part: email.message.Message) -> bytes:
    """The undecoded body bytes of a leaf part, exactly as received.

    ``get_payload()`` would re-decode 8-bit bytes through the declared
    charset; the parser stores them as surrogate escapes, reversed here.
    """
    payload = part._payload  # noqa: SLF001 - only exact source of the bytes
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        return b""
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return payload.encode("utf-8", "surrogateescape")


def _b64decode(data: bytes) -> bytes:
    """Decode base64 the way mail clients do: skip junk, repair padding."""
    cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", data)
    cleaned = cleaned.split(b"=", 1)[0]  # padding ends the data (RFC 2045)
    if len(cleaned) % 4 == 1:  # a lone trailing sextet carries no byte
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except binascii.Error:  # pragma: no cover - cleaned input is valid
        return b""


def _part_bytes(part: email.message.Message) -> bytes:
    """The decoded (transfer-encoding removed) bytes of a leaf part."""
    cte = _to_str(part.get("content-transfer-encoding", "")).strip().lower()
    raw = _wire_bytes(part)
    if cte == "base64":
        return _b64decode(raw)
    if cte == "quoted-printable":
        try:
            return binascii.a2b_qp(raw)
        except (binascii.Error, ValueError):
            return raw
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        try:
            decoded = part.get_payload(decode=True)
            return decoded if isinstance(decoded, bytes) else raw
        except Exception:
            return raw
    return raw  # 7bit, 8bit, binary, unknown: as on the wire


def _part_text(part: email.message.Message) -> str:
    try:
        charset = part.get_param("charset")
    except Exception:
        charset = None
    if isinstance(charset, tuple):
        charset = charset[2]
    charset = _scrub(charset) if isinstance(charset, str) else None
    return _normalise_newlines(decode_bytes(_part_bytes(part), charset))


def _content_id(part: email.message.Message) -> str:
    cid = _scrub(_unfold(_to_str(part.get("content-id", "")))).strip()
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1]
    return cid.strip().lower()


def _disposition(part: email.message.Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


# --------------------------------------------------------------------------
# HTML -> text
# --------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "p div tr li ul ol table h1 h2 h3 h4 h5 h6 blockquote pre hr section "
    "article header footer dt dd dl address center form fieldset main nav "
    "aside figure figcaption caption tbody thead tfoot".split()
)
_SKIP_TAGS = frozenset({"script", "style", "title", "template", "xml"})


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.in_head = False
        self.pre = 0

    def _newline(self) -> None:
        self.out.append("\n")

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "head":
            self.in_head = True
        elif tag == "body":
            self.in_head = False
            self.skip = 0
        elif tag == "br":
            self._newline()
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCK_TAGS:
            self._newline()
            if tag == "pre":
                self.pre += 1

    def handle_startendtag(self, tag, attrs):
        if tag == "br" or tag in _BLOCK_TAGS:
            self._newline()

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "head":
            self.in_head = False
        elif tag in _BLOCK_TAGS:
            self._newline()
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        if self.skip or self.in_head:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
            if data.startswith(" ") and (not self.out or self.out[-1].endswith((" ", "\n"))):
                data = data[1:]
        if data:
            self.out.append(data.replace("\xa0", " "))


def html_to_text(markup: str) -> str:
    """Plain-text rendering: tags stripped, <br>/<p>/blocks become newlines,
    entities unescaped (``&nbsp;`` becomes a space), scripts/styles dropped."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # HTMLParser is lenient; be safe anyway
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    lines = [line.strip(" ") for line in _normalise_newlines(text).split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def _cid_references(markup: str) -> set[str]:
    refs = set()
    for m in re.finditer(r"cid:([^\"'\s<>)]+)", markup, re.IGNORECASE):
        refs.add(unquote(html.unescape(m.group(1))).strip().lower())
    return refs


# --------------------------------------------------------------------------
# TNEF
# --------------------------------------------------------------------------


@dataclass
class _TnefResult:
    attachments: list[tuple[str | None, str, bytes]]  # (name, type, data)
    body: str  # plain text ("" if none)


def _tnef_records(data: bytes) -> list[tuple[int, int, bytes]] | None:
    """Verify TNEF framing and checksums; return (level, name, data) records.

    None if the stream is truncated, over-long or corrupt.
    """
    if len(data) < 6 or struct.unpack_from("<I", data, 0)[0] != _TNEF_SIGNATURE:
        return None
    records = []
    offset = 6
    while offset < len(data):
        if len(data) - offset < 11:
            # tolerate NUL padding after the last record
            return records if not data[offset:].strip(b"\x00") else None
        level = data[offset]
        name = struct.unpack_from("<H", data, offset + 1)[0]
        length = struct.unpack_from("<I", data, offset + 5)[0]
        end = offset + 9 + length
        if end + 2 > len(data):
            return None
        payload = data[offset + 9 : end]
        if (sum(payload) & 0xFFFF) != struct.unpack_from("<H", data, end)[0]:
            return None
        records.append((level, name, payload))
        offset = end + 2
    return records


def _tnef_text(value, codepage: str | None) -> str:
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"), codepage or "cp1252")
    return ""


def _tnef_attachment_name(att, codepage: str | None) -> str | None:
    from tnefparse import properties as P

    for prop in (P.MAPI_ATTACH_LONG_FILENAME, P.MAPI_DISPLAY_NAME):
        for attr in att.mapi_attrs:
            if attr.name == prop:
                try:
                    name = _tnef_text(attr.data, codepage).strip("\x00")
                except Exception:
                    name = ""
                if name:
                    return name
    name = _tnef_text(getattr(att, "_name", b""), codepage).strip("\x00")
    return name or None


def _tnef_attachment_type(att, name: str | None) -> str:
    from tnefparse import properties as P

    for attr in att.mapi_attrs:
        if attr.name == P.MAPI_ATTACH_MIME_TAG:
            try:
                ct = _tnef_text(attr.data, None).strip().lower()
            except Exception:
                ct = ""
            if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", ct):
                return ct
    if name and "." in name:
        guessed, _enc = _MIME.guess_type("file." + name.rsplit(".", 1)[-1], strict=False)
        if guessed:
            return guessed.lower()
    return "application/octet-stream"


def _unpack_tnef(data: bytes, depth: int = 0) -> _TnefResult | None:
    """Unpack a TNEF stream; None if it cannot be read exactly."""
    if depth > _MAX_TNEF_DEPTH:
        return None
    records = _tnef_records(data)
    if records is None:
        return None
    try:
        tnef = TNEF(data, do_checksum=False)  # checksums verified above
    except Exception as exc:  # tnefparse raises many kinds on bad input
        log.info("TNEF stream does not parse: %r", exc)
        return None

    # Exact attachment bytes: the attAttachData record of each attachment
    # (tnefparse opens a new attachment at each attAttachRendData record).
    exact: dict[int, bytes] = {}
    index = -1
    for level, name, payload in records:
        if name == TNEF.ATTATTACHRENDDATA:
            index += 1
        elif level == TNEF.LVL_ATTACHMENT and name == TNEF.ATTATTACHDATA and index >= 0:
            exact[index] = payload

    files: list[tuple[str | None, str, bytes]] = []
    for i, att in enumerate(tnef.attachments):
        name = _tnef_attachment_name(att, tnef.codepage)
        embed = getattr(att, "embed", None)
        if embed is not None:
            inner = _unpack_tnef(att.data, depth + 1)
            if inner is not None and inner.attachments:
                files.extend(inner.attachments)
                continue
            files.append((name, "application/vnd.ms-tnef", att.data))
            continue
        payload = exact.get(i, att.data if isinstance(att.data, bytes) else b"")
        files.append((name, _tnef_attachment_type(att, name), payload))

    body = ""
    try:
        if tnef.body:
            body = _normalise_newlines(_tnef_text(tnef.body, tnef.codepage))
        elif tnef.htmlbody:
            body = html_to_text(_tnef_text(tnef.htmlbody, tnef.codepage))
        elif tnef._rtfbody:  # noqa: SLF001 - rtfbody needs compressed_rtf
            rtf = decompress_rtf(tnef._rtfbody)  # noqa: SLF001
            if rtf is not None:
                body = rtf_to_text(rtf)
    except Exception as exc:
        log.info("TNEF body unreadable: %r", exc)
        body = ""

    if not files and not body.strip():
        return None  # nothing recovered: keep the original
    return _TnefResult(files, body.strip("\n"))


def _is_tnef(content_type: str, filename: str | None, data: bytes) -> bool:
    if content_type in _TNEF_TYPES:
        return True
    return (
        (filename or "").strip().lower() == "winmail.dat"
        and len(data) >= 4
        and struct.unpack_from("<I", data, 0)[0] == _TNEF_SIGNATURE
    )


# --------------------------------------------------------------------------
# Compressed RTF (MS-OXRTFCP) and RTF -> text, for TNEF bodies
# --------------------------------------------------------------------------

_RTF_PREBUF = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman "
    b"\\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New "
    b"RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par "
    b"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)


def decompress_rtf(data: bytes) -> bytes | None:
    """Decompress PR_RTF_COMPRESSED ("LZFu", or "MELA" = stored)."""
    if len(data) < 16:
        return None
    comp_size, raw_size, magic = struct.unpack_from("<II4s", data, 0)
    if magic == b"MELA":
        return data[16 : 16 + raw_size]
    if magic != b"LZFu":
        return None
    end = min(len(data), comp_size + 4)
    buf = bytearray(4096)
    buf[: len(_RTF_PREBUF)] = _RTF_PREBUF
    wpos = len(_RTF_PREBUF)
    out = bytearray()
    pos = 16
    while pos < end:
        control = data[pos]
        pos += 1
        for bit in range(8):
            if pos >= end:
                break
            if control & (1 << bit):
                if pos + 1 >= end:
                    return bytes(out)
                token = (data[pos] << 8) | data[pos + 1]
                pos += 2
                offset, length = token >> 4, (token & 0xF) + 2
                if offset == wpos:
                    return bytes(out)
                for k in range(length):
                    byte = buf[(offset + k) % 4096]
                    out.append(byte)
                    buf[wpos] = byte
                    wpos = (wpos + 1) % 4096
            else:
                byte = data[pos]
                pos += 1
                out.append(byte)
                buf[wpos] = byte
                wpos = (wpos + 1) % 4096
            if len(out) > raw_size + 4096:  # runaway stream
                return bytes(out)
    return bytes(out)


_RTF_SKIP_DESTINATIONS = frozenset(
    "fonttbl colortbl stylesheet info pict header footer headerl headerr "
    "footerl footerr object fldinst themedata datastore latentstyles "
    "generator xmlnstbl listtable listoverridetable rsidtbl mmathPr "
    "pgdsctbl filetbl revtbl userprops fonttbl bkmkstart bkmkend".split()
)
_RTF_SYMBOLS = {
    "par": "\n", "line": "\n", "sect": "\n", "row": "\n", "page": "\n",
    "tab": "\t", "cell": "\t", "emdash": "\u2014", "endash": "\u2013",
    "bullet": "\u2022", "lquote": "\u2018", "rquote": "\u2019",
    "ldblquote": "\u201c", "rdblquote": "\u201d", "emspace": " ",
    "enspace": " ", "qmspace": " ",
}
_RTF_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([\r\n]+)|([^\\{}\r\n]+)|(\\)",
    re.DOTALL,
)


def rtf_to_text(rtf: bytes) -> str:
    """Visible text of an RTF document (good enough for a mail body).

    Groups starting with ``\\*`` or a non-text destination (font table,
    pictures, ...) are skipped, which also drops the HTML tags Outlook
    encapsulates in ``{\\*\\htmltag ...}``.
    """
    codepage = "cp1252"
    m = re.search(rb"\\ansicpg(\d+)", rtf[:4096])
    if m:
        candidate = f"cp{int(m.group(1))}"
        try:
            if codecs.lookup(candidate)._is_text_encoding:
                codepage = candidate
        except LookupError:
            pass
    out: list[str] = []
    pending = bytearray()  # \'hh bytes, decoded together (DBCS code pages)
    stack: list[tuple[bool, int]] = []
    skip = False
    uc = 1
    skip_chars = 0
    group_start = False

    def flush():
        if pending:
            out.append(pending.decode(codepage, "replace"))
            pending.clear()

    pos = 0
    while pos < len(rtf):
        tok = _RTF_TOKEN.match(rtf, pos)
        if tok is None:  # pragma: no cover - the pattern matches any byte
            pos += 1
            continue
        pos = tok.end()
        word, arg, hexbyte, sym, brace, newline, text, _backslash = tok.groups()
        first, group_start = group_start, False
        if brace is not None:
            flush()
            if brace == b"{":
                if len(stack) > 512:
                    break
                stack.append((skip, uc))
                group_start = True
            else:
                skip, uc = stack.pop() if stack else (False, 1)
            skip_chars = 0
            continue
        if newline is not None or _backslash is not None:
            group_start = first
            continue
        if word is not None:
            name = word.decode("ascii")
            if name == "bin":  # raw binary data follows: never text
                pos += max(0, int(arg or 0))
                continue
            if first and name in _RTF_SKIP_DESTINATIONS:
                skip = True
            if skip:
                continue
            if name == "uc" and arg:
                uc = int(arg)
            elif name == "u" and arg:
                flush()
                code = int(arg)
                code = code + 65536 if code < 0 else code
                out.append(chr(code) if 0 < code < 0x110000 else "\ufffd")
                skip_chars = uc
            elif name in _RTF_SYMBOLS:
                flush()
                out.append(_RTF_SYMBOLS[name])
            continue
        if sym is not None:
            if sym == b"*":
                skip = True  # ignorable destination: skip the whole group
                continue
            if skip:
                continue
            if skip_chars:
                skip_chars -= 1
                continue
            if sym in (b"\\", b"{", b"}"):
                flush()
                out.append(sym.decode())
            elif sym == b"~":
                flush()
                out.append(" ")
            elif sym == b"_":
                flush()
                out.append("-")
            continue
        if skip:
            continue
        if hexbyte is not None:
            if skip_chars:
                skip_chars -= 1
                continue
            pending.append(int(hexbyte, 16))
            continue
        if text is not None:
            if skip_chars:
                n = min(skip_chars, len(text))
                text = text[n:]
                skip_chars -= n
            if text:
                flush()
                out.append(text.decode(codepage, "replace"))
    flush()
    result = _scrub("".join(out)).replace("\x00", "")
    lines = [line.rstrip() for line in result.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# --------------------------------------------------------------------------
# Walking the message
# --------------------------------------------------------------------------


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
                filename=_part_filename(part),
                disposition=_disposition(part),
            )
        )
    return leaves


def _reencoded_message(part: email.message.Message, payload: list) -> email.message.Message | None:
    """A message/rfc822 part sent base64 or quoted-printable (not allowed by
    RFC 2046, but seen): the parser read the encoded text as a message; decode
    it and parse the real one.  None when the part is not encoded that way."""
    cte = _to_str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte not in ("base64", "quoted-printable") or len(payload) != 1:
        return None
    sub = payload[0]
    try:
        if not sub.keys() and not sub.is_multipart():
            wire = _wire_bytes(sub)
        else:
            wire = sub.as_bytes(policy=email_policy.compat32.clone(max_line_length=0))
        if cte == "base64":
            data = _b64decode(wire)
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


def _address(header_value: str) -> tuple[list[tuple[str, str]], bool]:
    """(display name, lower-cased addr-spec) of each mailbox; ok flag."""
    try:
        parsed = _POLICY.header_factory("from", header_value)
        mailboxes = []
        for addr in parsed.addresses:
            user, domain = _scrub(addr.username or ""), _scrub(addr.domain or "")
            spec = _scrub(addr.addr_spec or "")
            if not user or not domain or spec in ("", "<>"):
                return [], False
            mailboxes.append((_scrub(addr.display_name or ""), spec.lower()))
        return mailboxes, True
    except Exception:
        return [], False


def _first(headers: MailHeaders, name: str) -> str:
    return headers.get(name, "")


def _build_headers(message: email.message.Message) -> MailHeaders:
    items = []
    for name, value in message.raw_items():
        raw = _unfold(_to_str(value))
        items.append((name, _scrub(raw).strip(), _decode_header_text(name, raw).strip()))
    return MailHeaders(tuple(items))


def _mp_from(mp) -> list[tuple[str, str]] | None:
    try:
        value = mp.from_
    except Exception:
        return None
    if not isinstance(value, list):
        return None
    return [(_scrub(str(n)), _scrub(str(a)).lower()) for n, a in value]


def _headers_only(raw: bytes) -> email.message.Message:
    return email.parser.BytesParser(policy=email_policy.compat32).parsebytes(raw, headersonly=True)


def parse(raw: bytes) -> ParsedMail:
    """Parse one raw RFC 5322 message (bytes as received over SMTP)."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise TypeError("parse() takes the raw message as bytes")

    defects: list[str] = []
    mp = None
    message: email.message.Message
    try:
        mp = mailparser.parse_from_bytes(raw)
        message = mp.message
    except Exception as exc:  # MailParserRecursionError, or a library bug
        log.warning("mail-parser failed: %r", exc)
        defects.append(f"mail-parser failed: {type(exc).__name__}")
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

    headers = _build_headers(message)

    # ---- From / Reply-To -------------------------------------------------
    from_headers = tuple(headers.raw_header_values("from"))
    from_address = from_name = ""
    if from_headers:
        mailboxes, ok = _address(from_headers[0])
        if ok and len(mailboxes) == 1:
            name, candidate = mailboxes[0]
            theirs = _mp_from(mp) if mp is not None else None
            if theirs is not None and len(theirs) == 1 and theirs[0][1] == candidate:
                from_address, from_name = candidate, name
            elif theirs is None:
                defects.append("From: no mail-parser cross-check; address withheld")
            else:
                defects.append("From: mail-parser and stdlib disagree; address withheld")
        elif from_headers[0].strip():
            defects.append("From: no single valid mailbox")
    reply_to = ""
    reply_values = headers.raw_header_values("reply-to")
    if reply_values:
        mailboxes, ok = _address(reply_values[0])
        if ok and mailboxes:
            reply_to = mailboxes[0][1]

    # ---- simple headers -------------------------------------------------
    subject = " ".join(_first(headers, "subject").split())
    message_ids = headers.raw_header_values("message-id")
    message_id = message_ids[0].strip() if message_ids else ""
    auto_submitted = _first(headers, "auto-submitted").strip().lower()
    precedence = _first(headers, "precedence").strip().lower()

    # ---- body and attachments -------------------------------------------
    attachments: list[tuple[str | None, str, bytes]] = []
    plain: list[str] = []
    htmls: list[str] = []
    tnef_bodies: list[str] = []

    if too_deep:
        attachments.append(("message.eml", "message/rfc822", raw))
        defects.append("message nested too deeply to parse; kept whole")
    else:
        try:
            leaves = _leaves(message)
        except RecursionError:  # pragma: no cover - walk is iterative
            leaves = []
        cid_refs: set[str] = set()
        html_texts: dict[int, str] = {}
        for i, leaf in enumerate(leaves):
            if leaf.content_type == "text/html" and _is_body(leaf):
                markup = _part_text(leaf.part)
                html_texts[i] = markup
                cid_refs |= _cid_references(markup)

        for i, leaf in enumerate(leaves):
            if _is_body(leaf):
                if leaf.nested:
                    continue  # a forwarded message's own body
                if leaf.content_type == "text/plain":
                    plain.append(_part_text(leaf.part))
                else:
                    htmls.append(html_texts[i])
                continue
            cid = _content_id(leaf.part)
            if (
                cid
                and cid in cid_refs
                and leaf.content_type.startswith("image/")
                and leaf.disposition != "attachment"
            ):
                continue  # inline image shown by the HTML body (logo)
            data = _part_bytes(leaf.part)
            if _is_tnef(leaf.content_type, leaf.filename, data):
                unpacked = _unpack_tnef(data)
                if unpacked is not None:
                    attachments.extend(unpacked.attachments)
                    if unpacked.body and not leaf.nested:
                        tnef_bodies.append(unpacked.body)
                    continue
                defects.append("TNEF part unreadable; kept as-is")
            attachments.append((leaf.filename, leaf.content_type, data))

    if plain:
        text = "\n".join(plain)
    elif htmls:
        text = "\n".join(html_to_text(h) for h in htmls)
    else:
        text = "\n".join(tnef_bodies)

    final = tuple(
        Attachment(
            filename=safe_filename(name, ctype, index),
            content_type=ctype,
            data=data,
        )
        for index, (name, ctype, data) in enumerate(attachments, start=1)
    )

    if mp is not None:
        try:
            for category in sorted(mp.defects_categories):
                defects.append(f"mail-parser: {category}")
        except Exception:
            pass

    return ParsedMail(
        message_id=message_id,
        from_address=from_address,
        from_name=from_name,
        from_headers=from_headers,
        reply_to=reply_to,
        subject=subject,
        text=text,
        attachments=final,
        auto_submitted=auto_submitted,
        precedence=precedence,
        headers=headers,
        defects=tuple(dict.fromkeys(defects)),
    )
