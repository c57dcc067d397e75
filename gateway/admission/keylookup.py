"""DKIM key lookups: the async TXT resolver sender authentication is given,
and the real one on dnspython."""

from __future__ import annotations

from typing import Awaitable, Callable

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver


class DnsFailure(Exception):
    """A DNS lookup failed temporarily (time-out, SERVFAIL, unreachable)."""


Resolver = Callable[[str], Awaitable[bytes | None]]
"""Async TXT lookup: ``"sel._domainkey.example.com"`` -> the record's strings
joined, None for NXDOMAIN or no TXT record; raises :class:`DnsFailure` on a
temporary failure."""


def dns_resolver(timeout: float = 3.0, *, nameservers: list[str] | None = None, port: int = 53) -> Resolver:
    """The real :data:`Resolver`, on dnspython's asyncio resolver.

    ``timeout`` bounds a whole lookup, retries included. Without
    ``nameservers`` the system's resolv.conf is read (now, not at import).
    """
    resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
    if nameservers is not None:
        resolver.nameservers = list(nameservers)
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout

    async def resolve(name: str) -> bytes | None:
        try:
            answer = await resolver.resolve(dns.name.from_text(name), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout as exc:
            raise DnsFailure("DNS timed out") from exc
        except dns.resolver.NoNameservers as exc:  # SERVFAIL, REFUSED, unreachable
            raise DnsFailure("no DNS server answered") from exc
        except dns.exception.DNSException as exc:
            raise DnsFailure(f"DNS lookup failed ({type(exc).__name__})") from exc
        # One record's strings are concatenated (RFC 6376 3.6.2.2). A name
        # with several TXT records is a publisher's mistake; like dkimpy's
        # own lookup, take the first.
        return b"".join(next(iter(answer)).strings)

    return resolve
