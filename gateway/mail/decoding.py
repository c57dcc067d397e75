"""Decoding what a MIME part holds, never raising and never dropping bytes:
header values (RFC 2047), 8-bit and unknown charsets, transfer encodings
(lenient base64, quoted-printable, uuencode). Shared by parse, files and
tnef; the choices and why: docs/mail-parsing.md."""

from __future__ import annotations

import binascii
import codecs
import email.message
import re
from email import policy as email_policy

import pybase64

_POLICY = email_policy.default


def scrub(text: str) -> str:
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


def unfold(value: str) -> str:
    return re.sub(r"\r?\n|\r", "", value)


def to_str(value) -> str:
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
    return scrub(text)


def decode_header_text(name: str, raw: str) -> str:
    """RFC 2047 decode an unfolded header value as unstructured text."""
    if raw.isascii() and "=?" not in raw:
        # No encoded word, no 8-bit byte: the stdlib's unstructured parse
        # gives the value back as it is (tests/test_mailparse.py holds it to
        # that), for ~40 us a header that a request's Subject and Message-ID paid.
        return raw
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
    return scrub(value)


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def wire_bytes(part: email.message.Message) -> bytes:
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


# Every byte that is not of the base64 alphabet (or "="): dropped by b64decode.
_NOT_BASE64 = bytes(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))


def b64decode(data: bytes) -> bytes:
    """Decode base64 the way mail clients do: skip junk, repair padding."""
    # bytes.translate, not a regular expression: one pass in C (a 100 KB
    # attachment's 1,800 line ends were 4 % of the gateway's time a request).
    cleaned = bytes(data).translate(None, _NOT_BASE64)
    cleaned = cleaned.split(b"=", 1)[0]  # padding ends the data (RFC 2045)
    if len(cleaned) % 4 == 1:  # a lone trailing sextet carries no byte
        cleaned = cleaned[:-1]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        # Cleaned, it is canonical base64, which pybase64's validating SIMD
        # decoder reads as binascii does (non-zero bits in the last sextet
        # ignored alike), ~60 times faster (tests/test_mailparse.py).
        return pybase64.b64decode(cleaned, validate=True)
    except binascii.Error:  # pragma: no cover - cleaned input is valid
        return b""


def part_bytes(part: email.message.Message) -> bytes:
    """The decoded (transfer-encoding removed) bytes of a leaf part."""
    cte = to_str(part.get("content-transfer-encoding", "")).strip().lower()
    raw = wire_bytes(part)
    if cte == "base64":
        return b64decode(raw)
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


def part_text(part: email.message.Message) -> str:
    try:
        charset = part.get_param("charset")
    except Exception:
        charset = None
    if isinstance(charset, tuple):
        charset = charset[2]
    charset = scrub(charset) if isinstance(charset, str) else None
    return normalise_newlines(decode_bytes(part_bytes(part), charset))


def content_id(part: email.message.Message) -> str:
    cid = scrub(unfold(to_str(part.get("content-id", "")))).strip()
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1]
    return cid.strip().lower()


def disposition(part: email.message.Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""
