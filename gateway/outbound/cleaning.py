"""Untrusted values made safe for a mail: every value that reaches a header
or a one-line field of the body is first reduced to a single line (CR, LF
and other control or line separator characters become a space; bidi
overrides are dropped), and addresses go through
:class:`email.headerregistry.Address`, so a value can never add a header."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from urllib.parse import urlsplit

from gateway.core.models import GATEWAY_LOCAL_PART, SECURE_LOCAL_PART

_SUBJECT_PART_MAX = 120
_BIDI = re.compile("[\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069]")
# What breaks a line or controls a terminal: the characters of Unicode's
# categories Cc (C0, DEL, C1), Zl and Zp, as a class that a regular
# expression replaces in C (tests/test_cleaning.py checks it against every
# code point's category).
_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MSG_ID = re.compile(r"<[^<>\s]+>")
# An address of the plainest kind: a dot-atom local part (RFC 5322 atext)
# and a host name. The email package's parser reads such an address as
# exactly these two halves, at ~50 us an address (each request's client is
# a new one); every other address is left to it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@({_LABEL}(?:\.{_LABEL})*)")


def one_line(value: object) -> str:
    """``value`` as a single line: control and line-separator characters
    (CR, LF, NUL, U+2028, ...) become a space, bidi overrides are dropped,
    runs of white space collapse to one space, ends are trimmed."""
    text = str(value)
    if not text.isascii():  # ASCII text has no bidi control
        text = _BIDI.sub("", text)
    if not text.isprintable():  # printable text has no _BREAKING character
        text = _BREAKING.sub(" ", text)
    return " ".join(text.split())


def clean_lines(value: object) -> list[str]:
    """A multi-line block as clean lines: line breaks are kept (as separate
    lines), other control characters become spaces, leading indentation is kept."""
    text = _BIDI.sub("", str(value)).expandtabs(4)
    lines = []
    for raw in re.split(r"\r\n|[\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]", text):
        line = _BREAKING.sub(" ", raw).rstrip()
        indent = len(line) - len(line.lstrip(" "))
        lines.append(" " * indent + " ".join(line.split()))
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def shorten(value: str, limit: int = _SUBJECT_PART_MAX) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


@functools.lru_cache(maxsize=1024)
def address(addr_spec: str, display_name: str = "") -> Address:
    """An Address from untrusted parts; ValueError if it isn't one mailbox.
    Remembered (an Address cannot be changed): the email package's parsing
    of it was a quarter of composing a request's two mails, and they name
    the same firm and staff addresses again and again."""
    spec = one_line(addr_spec)
    plain = _PLAIN_ADDRESS.fullmatch(spec)
    try:
        if plain:
            address = Address(display_name=one_line(display_name), username=plain[1], domain=plain[2])
        else:
            address = Address(display_name=one_line(display_name), addr_spec=spec)
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise ValueError(f"not a usable email address: {spec!r}") from exc
    if not address.username or not address.domain:
        raise ValueError(f"not a usable email address: {spec!r}")
    return address


def gateway_address(firm_domain: str, display_name: str = "", *, secure: bool = False) -> Address:
    """pay@DOMAIN, or secure@DOMAIN for what a secure message sends."""
    local = SECURE_LOCAL_PART if secure else GATEWAY_LOCAL_PART
    return address(f"{local}@{one_line(firm_domain)}", display_name)


def message_id_ref(value: str) -> str:
    """A usable ``<id@host>`` from an inbound Message-ID, or "" when there is none."""
    value = one_line(value)
    if not value:
        return ""
    match = _MSG_ID.search(value)
    if match:
        return match.group(0)
    if re.fullmatch(r"[^<>\s]+@[^<>\s]+", value):
        return f"<{value}>"
    return ""


def checked_now(now: datetime) -> datetime:
    if not isinstance(now, datetime):
        raise TypeError("now must be a datetime")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (a naive time gives an unknown-zone Date)")
    return now


def checked_link(link: str) -> str:
    link = "".join(one_line(link).split())
    parts = urlsplit(link)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"the link must be an http(s) URL, not {link!r}")
    return link
