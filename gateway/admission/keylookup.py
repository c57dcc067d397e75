"""DKIM key lookups: the async TXT resolver sender authentication is given,
and the real one on dnspython."""

from __future__ import annotations

import time
from typing import Awaitable, Callable, Sequence

import dns.exception
import dns.name
import dns.resolver

from gateway.core.resolvers import resolver_for


class DnsFailure(Exception):
    """A DNS lookup failed temporarily (time-out, SERVFAIL, unreachable)."""


Resolver = Callable[[str], Awaitable[bytes | None]]
"""Async TXT lookup: ``"sel._domainkey.example.com"`` -> the record's strings
joined, None for NXDOMAIN or no TXT record; raises :class:`DnsFailure` on a
temporary failure."""


# Keys are kept as long as their TTL says, but never longer than this: a
# key the firm revokes stops working within the hour whatever its TTL.
MAX_TTL_SECONDS = 3600
CACHE_SIZE = 1024


def dns_resolver(timeout: float = 3.0, *, nameservers: Sequence[str] = (),
                 monotonic: Callable[[], float] = time.monotonic) -> Resolver:
    """The real :data:`Resolver`, on dnspython's asyncio resolver, with the
    records it found kept for their TTL (at most :data:`MAX_TTL_SECONDS`).

    ``nameservers`` as CLIENTTRACK_DNS_NAMESERVERS gives them (``host`` or
    ``host:port``, IP addresses); none: the system's resolv.conf (read now,
    not at import). ``timeout`` bounds a whole lookup, retries included.
    Answers that say "no key" are not kept: a key the firm has just
    published works at once.
    """
    resolver = resolver_for(nameservers, timeout)
    cache: dict[str, tuple[bytes, float]] = {}

    async def resolve(name: str) -> bytes | None:
        kept = cache.get(name)
        if kept is not None and kept[1] > monotonic():
            return kept[0]
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
        record = b"".join(next(iter(answer)).strings)
        if len(cache) >= CACHE_SIZE:
            now = monotonic()
            for stale in [key for key, (_record, until) in cache.items() if until <= now] or list(cache):
                del cache[stale]
        cache[name] = (record, monotonic() + min(answer.rrset.ttl, MAX_TTL_SECONDS))
        return record

    return resolve
