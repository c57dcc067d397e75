"""Authentication-Results from the firm's own MX (CLIENTTRACK_TRUSTED_AUTHSERV_IDS).

A gateway behind the firm's MX may take the MX's word that a DKIM
signature verified. Anyone can write such a header, so:

* Only the topmost results count: the run of Authentication-Results
  fields with a trusted id at the top of the header section (below only
  the MX's trace fields: Received, Return-Path, Delivered-To,
  X-Original-To), ending at the first other field (an untrusted id's
  results end it too). The MX
  prepends its own there; one the sender wrote stands below the MX's
  Received or the MX's own results. (This only narrows the trick: the MX
  must still delete arriving Authentication-Results fields with its id,
  RFC 8601 section 5; see SECURITY.md.)
* Only ``dkim=pass`` counts, with a ``header.d`` aligned with the From, and
  the signature it vouches for must be in the message (the DKIM-Signature
  with that d=, and that s= and b= prefix when given), of the shape
  signatures.py asks for: covering From, Subject, Date and Message-ID, no
  l=. ``dmarc=pass`` alone no longer counts: DMARC passes on SPF alone,
  which says nothing about which fields the directives come from.
* The gateway removes every Authentication-Results field carrying one of
  its ids (its trusted ids and its own host name) before it stores the
  message (:func:`strip`), so nothing later reads a result it did not check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import authres

from gateway.admission.headersection import HeaderSection, header_end
from gateway.admission.signatures import Signature, aligned

_TRACE = frozenset({"received", "return-path", "delivered-to", "x-original-to"})
# The authserv-id: the first word, after any comments (RFC 8601 2.2).
_AUTHSERV_ID = re.compile(rb"\A\s*(?:\([^)]*\)\s*)*([^\s;()]+)")


@dataclass(frozen=True)
class Vouched:
    reason: str  # why the MX's word authenticates the From, "" if it does not
    signatures: tuple[Signature, ...] = ()  # the signatures it vouches for
    problems: tuple[str, ...] = ()  # why results that might have passed did not


def authserv_id(value: bytes) -> str:
    match = _AUTHSERV_ID.match(value)
    return match.group(1).decode("ascii", "replace").lower() if match else ""


def topmost(section: HeaderSection, trusted: frozenset[str]) -> list[authres.AuthenticationResultsHeader]:
    """The trusted Authentication-Results at the top of the section."""
    found: list[authres.AuthenticationResultsHeader] = []
    started = False
    for name, value in section.fields:
        name = name.lower()
        if name in _TRACE and not started:
            continue
        if name != "authentication-results" or authserv_id(value) not in trusted:
            break
        started = True
        try:
            found.append(authres.parse_value(re.sub(rb"\r\n", b"", value).decode("utf-8")))
        except (authres.AuthResError, UnicodeDecodeError):
            continue  # unreadable: it proves nothing
    return found


def vouched(section: HeaderSection, signatures: list[Signature], from_domain: str,
            trusted_ids: tuple[str, ...]) -> Vouched:
    """Do the topmost trusted results vouch for a signature of the From's
    domain that is in the message and of the right shape?"""
    trusted = frozenset(i.strip().lower() for i in trusted_ids if i.strip())
    if not trusted:
        return Vouched("")
    problems = []
    for header in topmost(section, trusted):
        for result in header.results:
            if result.method.lower() != "dkim" or result.result.lower() != "pass":
                continue
            props = {(p.type.lower(), p.name.lower()): str(p.value) for p in result.properties}
            domain = props.get(("header", "d"), "").lower()
            if not aligned(domain, from_domain):
                continue
            selector = props.get(("header", "s"), "").lower()
            prefix = props.get(("header", "b"), "")
            matching = [s for s in signatures if s.domain == domain and (not selector or s.selector == selector)
                        and s.b.startswith(prefix)]
            if not matching:
                problems.append(f"{header.authserv_id}: the DKIM-Signature of d={domain} it vouches for "
                                "is not in the message")
                continue
            wrong = [s.problem for s in matching if s.problem]
            if wrong:
                problems.append(f"{header.authserv_id}: d={domain}: {wrong[0]}")
                continue
            return Vouched(f"{header.authserv_id}: dkim=pass header.d={domain}", tuple(matching))
    return Vouched("", (), tuple(problems))


def strip(raw: bytes, ids: frozenset[str]) -> bytes:
    """``raw`` without the Authentication-Results fields carrying one of
    ``ids``. Works on an unambiguous section (headersection.read passed):
    every line ends with CRLF, continuation lines start with WSP."""
    end = header_end(raw)
    fields: list[list[bytes]] = []  # each field's lines
    for line in raw[:end].split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept = [lines for lines in fields if not _ours(b"\r\n".join(lines), ids)]
    if len(kept) == len(fields):
        return raw
    return b"".join(line + b"\r\n" for lines in kept for line in lines) + raw[end:]


def _ours(field: bytes, ids: frozenset[str]) -> bool:
    name, colon, value = field.partition(b":")
    return bool(colon) and name.lower() == b"authentication-results" and authserv_id(value) in ids
