"""The DNS resolver CLIENTTRACK_DNS_NAMESERVERS configures, for every
lookup the gateway makes (DKIM keys of arriving mail, the records
`firm dkim --check` reads)."""

from __future__ import annotations

from typing import Sequence

import dns.asyncresolver
import dns.nameserver

from gateway.core.settings import split_host_port


def resolver_for(nameservers: Sequence[str], timeout: float) -> dns.asyncresolver.Resolver:
    """dnspython's asyncio resolver asking ``nameservers`` (``host`` or
    ``host:port``, as the setting gives them), or the system's (resolv.conf,
    read now, not at import) when there are none. ``timeout`` bounds a
    whole lookup, retries included."""
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [_nameserver(item) for item in nameservers]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _nameserver(item: str) -> dns.nameserver.Do53Nameserver:
    host, port = split_host_port(item)
    return dns.nameserver.Do53Nameserver(host, port or 53)
