"""What a DKIM-Signature must be to authenticate the From, read from its
tags alone (before any key is fetched).

A signature can vouch for a message only if its d= aligns with the From
domain (DMARC relaxed alignment), its algorithm is strong (no rsa-sha1), it
has no l= (a body length limit lets anyone append directives below the
signed part), it has not expired (x=, by our clock: dkimpy allows ten
hours' slack), and it covers every field the gateway acts on or checks a
replay by: From, Subject, Date and Message-ID (Gmail and Microsoft 365
both sign these; Microsoft 365 does not sign To, so To cannot be asked
for). The header section is unambiguous by then (headersection.py), so a
name in h= covers the one field of that name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import dkim.util

from gateway.admission.headersection import display_name

ACCEPTED_ALGORITHMS = frozenset({b"rsa-sha256", b"ed25519-sha256"})
REQUIRED = ("from", "subject", "date", "message-id")

# Second-level labels that, under a two-letter country TLD, are registries
# rather than organisations (example.co.uk, example.com.au, example.on.ca).
# Without the Public Suffix List this is an approximation: a label missing
# here makes alignment too loose (two firms under one suffix would align),
# a label listed needlessly only makes it stricter, so the list errs long.
_REGISTRY_LABELS = frozenset(
    {
        "ac", "co", "com", "edu", "gov", "net", "org", "mil", "nic", "sch",
        "gob", "go", "or", "ne", "ltd", "plc", "nhs", "gc",
        # Canadian provinces and territories (example.qc.ca)
        "ab", "bc", "mb", "nb", "nl", "ns", "nt", "nu", "on", "pe", "qc", "sk", "yk",
    }
)

# DKIM selectors and signing domains: host-name labels, leniently with "_".
_DNS_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_SELECTOR = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_SIGNING_DOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})+")


def organizational_domain(domain: str) -> str:
    """DMARC's organizational domain, approximated without the PSL.

    The last two labels, or the last three when the TLD has two letters and
    the label before it is a known registry label (see _REGISTRY_LABELS):
    ``mail.firm.example`` -> ``firm.example``, ``a.firm.co.uk`` ->
    ``firm.co.uk``. Shared-hosting suffixes (github.io, duckdns.org, ...) are
    not known: two sites under one of them would align with each other.
    """
    labels = domain.lower().split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _REGISTRY_LABELS else 2
    return ".".join(labels[-keep:])


def aligned(domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment: both have the same organizational domain."""
    return organizational_domain(domain) == organizational_domain(from_domain)


@dataclass(frozen=True)
class Signature:
    index: int  # position among the DKIM-Signature fields, as dkimpy counts
    domain: str  # d=, lower-case, "?" when unusable
    selector: str
    aligned: bool  # d= aligns with the From domain
    signed: frozenset[str]  # the h= names, lower-case
    expires: int | None  # x=, seconds since the epoch
    b: str  # b=, without its folding white space
    problem: str  # why it cannot authenticate the From; "" if it might

    @property
    def key_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def read(index: int, value: bytes, from_domain: str, now: datetime) -> Signature:
    """One DKIM-Signature field's value, judged by its tags."""
    try:
        tags = dkim.util.parse_tag_value(value)
        domain = tags.get(b"d", b"").decode("ascii").lower()
        selector = tags.get(b"s", b"").decode("ascii").lower()
        signed = frozenset(h.strip().lower().decode("ascii") for h in tags.get(b"h", b"").split(b":"))
        b = re.sub(rb"\s+", b"", tags.get(b"b", b"")).decode("ascii")
        expires = int(tags[b"x"]) if b"x" in tags else None
    except (dkim.util.InvalidTagValueList, UnicodeDecodeError, ValueError):
        return Signature(index, "?", "", False, frozenset(), None, "", "unreadable DKIM-Signature header")
    if not _SIGNING_DOMAIN.fullmatch(domain) or not _SELECTOR.fullmatch(selector) or len(domain) + len(selector) > 240:
        return Signature(index, "?", "", False, signed, expires, b, "invalid d= or s= tag")
    unsigned = [display_name(name) for name in REQUIRED if name not in signed]

    is_aligned = aligned(domain, from_domain)
    if not is_aligned:
        problem = f"signed by {domain}, which is not aligned with {from_domain}"
    elif tags.get(b"a") not in ACCEPTED_ALGORITHMS:
        problem = "signing algorithm not accepted (rsa-sha1 is too weak)"
    elif "from" in [n.lower() for n in unsigned]:
        problem = "the From header is not signed"
    elif unsigned:
        problem = (f"{', '.join(unsigned)} not signed (a signature must cover From, Subject, Date and "
                   "Message-ID)")
    elif b"l" in tags:
        problem = "l= (a body length limit) is not accepted"
    elif expires is not None and expires < now.timestamp():
        when = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        problem = f"the signature expired at {when} (x=)"
    else:
        problem = ""
    return Signature(index, domain, selector, is_aligned, signed, expires, b, problem)


def read_all(fields: tuple[tuple[str, bytes], ...], from_domain: str, now: datetime) -> list[Signature]:
    """Every DKIM-Signature of a header section, in order."""
    values = [value for name, value in fields if name.lower() == "dkim-signature"]
    return [read(i, value, from_domain, now) for i, value in enumerate(values)]
