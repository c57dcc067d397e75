"""The strict From: exactly one From header holding exactly one plain
mailbox, read the same way by two address parsers (step 1 of
docs/sender-authentication.md). The header section it comes from is
headersection.py's, unambiguous by then."""

from __future__ import annotations

import email.policy
import functools
import inspect
import re
import unicodedata
from email import errors as email_errors
from email.utils import getaddresses

# Python 3.11.7 predates getaddresses(strict=True) (the CVE-2023-27043 fix,
# backported to later patch releases): use it where it exists.
_GETADDRESSES_HAS_STRICT = "strict" in inspect.signature(getaddresses).parameters

# RFC 5322 atext, plus any non-ASCII character (RFC 6532 addresses).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})+")


class FromError(ValueError):
    """The From header is not exactly one strictly valid mailbox."""


def _has_comment(value: str) -> bool:
    """True if the header has an RFC 5322 comment, i.e. "(" outside quotes."""
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "(" and not quoted:
            return True
    return False


def ascii_domain(domain: str) -> str:
    """The lower-case A-label form of a domain, or "" if it is not a host name."""
    try:
        ascii_form = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""
    # The idna codec also splits at lookalike dots ("firm\u3002example"):
    # refuse those rather than read them as "firm.example".
    if ascii_form.count(".") != domain.count("."):
        return ""
    return ascii_form if len(ascii_form) <= 253 and _HOST_NAME.fullmatch(ascii_form) else ""


def strict_from(values: list[bytes]) -> str:
    """The one address of a header section's From values, lower-cased.

    Raises :class:`FromError` with a short reason, written by us (never
    echoing the header), when there is not exactly one From header holding
    exactly one plain mailbox."""
    if len(values) != 1:
        raise FromError("missing" if not values else f"{len(values)} From headers, expected exactly one")
    try:
        value = values[0].replace(b"\r\n", b"").decode("utf-8")  # unfolded (RFC 5322 2.2.3); RFC 6532
    except UnicodeDecodeError:
        raise FromError("not valid UTF-8") from None
    return _mailbox(value)


# Staff send from a handful of From lines, over and over: the parse below is
# the costliest step of admitting a message, and a pure function of the line.
# (Refusals raise, so they are not kept: lru_cache keeps only answers.)
@functools.lru_cache(maxsize=4096)
def _mailbox(value: str) -> str:
    """The one plain mailbox of a From value, lower-cased, or FromError."""
    if _has_comment(value):
        raise FromError("comments (in parentheses) are not accepted")
    try:
        parsed = email.policy.default.header_factory("from", value)
        groups = parsed.groups
    except Exception:  # the stdlib parser raises IndexError etc. on some inputs
        raise FromError("cannot be parsed") from None
    # RFC 6532 allows a UTF-8 local part; every other defect is a refusal.
    defects = [d for d in parsed.defects if not isinstance(d, email_errors.NonASCIILocalPartDefect)]
    if defects:
        raise FromError(f"malformed address ({type(defects[0]).__name__})")
    if len(groups) == 1 and groups[0].display_name is not None:
        raise FromError("group syntax is not accepted")
    addresses = [address for group in groups for address in group.addresses]
    if len(addresses) != 1:
        raise FromError(f"holds {len(addresses)} addresses, expected exactly one")
    mailbox = addresses[0]
    if "@" in unicodedata.normalize("NFKC", mailbox.display_name):
        raise FromError("the display name contains '@' (it looks like an address)")
    if "=?" in mailbox.addr_spec:
        raise FromError("an encoded-word inside the address")
    if not _DOT_ATOM.fullmatch(mailbox.username):
        raise FromError("the local part is not a plain dot-atom")
    if not ascii_domain(mailbox.domain):
        raise FromError("the domain is not a host name")
    if len(mailbox.addr_spec) > 254:  # RFC 5321's limit, and the staff and queue columns'
        raise FromError("the address is longer than 254 characters")
    # A second, independent reading: a trick that fools one parser rarely
    # fools both the same way (e.g. CVE-2023-27043 in getaddresses).
    if _GETADDRESSES_HAS_STRICT:
        others = getaddresses([value], strict=True)
    else:
        others = getaddresses([value])
    if [address.lower() for _name, address in others] != [mailbox.addr_spec.lower()]:
        raise FromError("the address parsers disagree")
    return mailbox.addr_spec.lower()
