"""Sender authentication at SMTP DATA time, before the 250.

:func:`authenticate` decides whether the address in a message's From is
authenticated and the message may act for it, and returns a
:class:`Verdict`; the SMTP handler answers ``Verdict.smtp_reply`` when it
is not ok and sends no mail about it (no backscatter). In order, the first
refusal decides:

1. an unambiguous header section (headersection.py);
2. a strict From (fromheader.py);
3. a loopback peer under --demo is trusted as it is;
4. the firm's MX vouches for a signature (authresults.py), or a DKIM
   signature verifies here (dkimcheck.py), aligned with the From and
   covering From, Subject, Date and Message-ID (signatures.py);
5. the message is fresh (freshness.py) and, where the signature covers To
   or Cc, addressed to the gateway (addressed.py). That its Message-ID was
   never accepted before for the firm is checked where it is recorded, in
   the admission transaction (intake.py).

A DNS failure is never an accept: 451 unless another signature passes. The
rules in full, and why: docs/sender-authentication.md.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from gateway.admission import addressed, authresults, dkimcheck, freshness, headersection, signatures
from gateway.admission.fromheader import FromError, ascii_domain, strict_from
from gateway.admission.keylookup import Resolver

# Header sections up to this size are parsed on the event loop (a thread
# hand-off costs more); bigger ones in a worker thread.
INLINE_HEADER_BYTES = 64 * 1024

# SMTP reply lines are at most 512 octets (RFC 5321 4.5.3.1.5).
_MAX_REASON = 400


@dataclass(frozen=True)
class Verdict:
    """What to answer at DATA; the caller sends no mail about a refusal."""

    ok: bool
    smtp_reply: str  # "" when ok, else the full SMTP reply line to send
    from_address: str  # the strictly parsed From address, lower-cased ("" if none)
    method: str  # "dkim", "authres", "trusted-peer", or "" when not ok
    reason: str  # short, for logs
    message_id: str = ""  # the signed Message-ID, to be accepted once ("" under --demo's trust)


@dataclass(frozen=True)
class Checks:
    """What the checks need besides the message: who trusts what, and when."""

    trust_loopback: bool
    trusted_authserv_ids: tuple[str, ...]
    resolve: Resolver
    now: datetime
    max_age: timedelta
    gateway_addresses: list[str]  # the envelope's recipients: the firm's gateway address(es)


# A pure function of the peer's address, asked at every DATA: parsing the
# address (ipaddress) was 3 % of the front's event loop under smtp-source.
# A host is a short string; 1,024 of them are a few hundred KB at most.
@functools.lru_cache(maxsize=1024)
def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # A dual-stack listener reports IPv4 loopback as ::ffff:127.0.0.1.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _refused(text: str, from_address: str = "") -> Verdict:
    """A 550 5.7.1 that says why, in one line short enough for SMTP."""
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 3] + "..."
    return Verdict(False, f"550 5.7.1 {text}", from_address, "", text)


def _read(raw: bytes) -> tuple[headersection.HeaderSection, str, str]:
    """(the header section, the From address, its domain in ASCII)."""
    section = headersection.read(raw)
    address = strict_from(section.values("from"))
    return section, address, ascii_domain(address.rpartition("@")[2])


async def authenticate(raw: bytes, *, peer_host: str, checks: Checks,
                       whole: Callable[[], Awaitable[bytes]] | None = None) -> Verdict:
    """Decide whether the message may act for the sender in its From.
    For a large message ``raw`` is its header section and ``whole`` reads
    the whole message back, which only verifying a DKIM signature here
    needs (its body hash)."""
    try:
        if headersection.header_end(raw) <= INLINE_HEADER_BYTES:
            section, from_address, from_domain = _read(raw)
        else:
            section, from_address, from_domain = await asyncio.to_thread(_read, raw)
    except headersection.Ambiguous as exc:
        return _refused(f"Ambiguous header section: {exc}")
    except FromError as exc:
        return _refused(f"From header: {exc}")
    if checks.trust_loopback and _is_loopback(peer_host):
        return Verdict(True, "", from_address, "trusted-peer", f"loopback peer {peer_host} trusted (--demo)")

    found = signatures.read_all(section.fields, from_domain, checks.now)
    mx = authresults.vouched(section, found, from_domain, checks.trusted_authserv_ids)
    if mx.reason:
        method, reason, passed = "authres", mx.reason, list(mx.signatures)
    else:
        message = await whole() if whole is not None else raw
        result = await dkimcheck.verify(message, section.fields, from_domain, checks.resolve, checks.now)
        del message
        if not result.passed:
            return _not_authenticated(result, mx, from_address)
        method, reason, passed = "dkim", result.reason, [result.signature]

    expires = min((s.expires for s in passed if s.expires is not None), default=None)
    stale = freshness.problem(section.text("date"), expires, checks.now, checks.max_age)
    if stale:
        return _refused(f"Stale message: {stale}", from_address)
    elsewhere = addressed.problem(section, found, checks.gateway_addresses)
    if elsewhere:
        return _refused(f"Not addressed to the gateway: {elsewhere}", from_address)
    message_id = section.text("message-id")
    if not message_id:
        return _refused("No Message-ID header: a signed message needs one", from_address)
    return Verdict(True, "", from_address, method, reason, message_id)


def _not_authenticated(result: dkimcheck.DkimResult, mx: authresults.Vouched, from_address: str) -> Verdict:
    if result.dns_failure:
        reply = f"451 4.7.5 Could not check the sender's DKIM key ({result.dns_failure}), try again later"
        return Verdict(False, reply, from_address, "", result.reason)
    reason = result.reason
    if mx.problems:
        reason += "; " + "; ".join(mx.problems)
    return _refused(f"Sender not authenticated: {reason}", from_address)
