"""Sender authentication at SMTP DATA time, before the 250.

:func:`authenticate` decides whether the address in a message's From is
authenticated and returns a :class:`Verdict`; the SMTP handler answers
``Verdict.smtp_reply`` when it is not ok and sends no mail about it (no
backscatter). The first step that decides, decides: a strict From
(fromheader.py), a loopback peer under --demo, an Authentication-Results
header from a trusted authserv-id, then DKIM (dkimcheck.py). A DNS failure
is never an accept: 451 unless another signature passes. The rules in full,
and why: docs/sender-authentication.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from email.message import Message

import authres

from gateway.admission import dkimcheck
from gateway.admission.dkimcheck import aligned
from gateway.admission.fromheader import (
    FromError, ascii_domain, header_bytes, header_section, header_values, strict_from_section,
)
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


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # A dual-stack listener reports IPv4 loopback as ::ffff:127.0.0.1.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _trusted_authres(headers: Message, from_domain: str, trusted_ids: tuple[str, ...]) -> str:
    """Why a trusted Authentication-Results header authenticates the From
    domain, or "" if none does."""
    trusted = {i.strip().lower() for i in trusted_ids if i.strip()}
    if not trusted:
        return ""
    for value in header_values(headers, "authentication-results"):
        if value is None:
            continue
        try:
            header = authres.parse_value(value)
        except authres.AuthResError:
            continue  # unreadable: it proves nothing
        if header.authserv_id not in trusted:
            continue
        for result in header.results:
            method, outcome = result.method.lower(), result.result.lower()
            if outcome != "pass":
                continue
            props = {(p.type.lower(), p.name.lower()): str(p.value).lower() for p in result.properties}
            if method == "dkim" and aligned(props.get(("header", "d"), ""), from_domain):
                return f"{header.authserv_id}: dkim=pass header.d={props[('header', 'd')]}"
            if method == "dmarc" and props.get(("header", "from")) == from_domain:
                return f"{header.authserv_id}: dmarc=pass header.from={from_domain}"
    return ""


def _inspect(header: bytes, trusted_authserv_ids: tuple[str, ...]) -> tuple[str, str, str]:
    """(From address, its domain in ASCII, why a trusted A-R header passes it or "")."""
    headers = header_section(header)
    address = strict_from_section(headers)
    domain = ascii_domain(address.rpartition("@")[2])
    return address, domain, _trusted_authres(headers, domain, trusted_authserv_ids)


async def authenticate(
    raw: bytes,
    *,
    peer_host: str,
    trust_loopback: bool,
    trusted_authserv_ids: tuple[str, ...],
    resolve: Resolver,
) -> Verdict:
    """Decide whether the sender in a raw message's From is authenticated.

    A DNS failure is never an accept: it gives 451, unless another signature
    passes. The steps: docs/sender-authentication.md.
    """
    try:
        header = header_bytes(raw)
        if len(header) <= INLINE_HEADER_BYTES:
            from_address, from_domain, authres_pass = _inspect(header, trusted_authserv_ids)
        else:
            from_address, from_domain, authres_pass = await asyncio.to_thread(_inspect, header, trusted_authserv_ids)
    except FromError as exc:
        return Verdict(False, f"550 5.7.1 From header: {exc}", "", "", f"From header: {exc}")
    if trust_loopback and _is_loopback(peer_host):
        return Verdict(True, "", from_address, "trusted-peer", f"loopback peer {peer_host} trusted (--demo)")
    if authres_pass:
        return Verdict(True, "", from_address, "authres", authres_pass)
    return _dkim_verdict(await dkimcheck.verify(raw, from_domain, resolve), from_address)


def _dkim_verdict(result: dkimcheck.DkimResult, from_address: str) -> Verdict:
    if result.passed:
        return Verdict(True, "", from_address, "dkim", result.reason)
    if result.dns_failure:
        reply = f"451 4.7.5 Could not check the sender's DKIM key ({result.dns_failure}), try again later"
        return Verdict(False, reply, from_address, "", result.reason)
    reason = result.reason
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    return Verdict(False, f"550 5.7.1 Sender not authenticated: {reason}", from_address, "", reason)
