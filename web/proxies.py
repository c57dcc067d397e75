"""The client's address, believing X-Forwarded-For only from our own proxies.

Anyone can send an X-Forwarded-For header: believed from everyone, it
would give each guess at a password a fresh address and a fresh allowance
in the per-address throttle. (uvicorn's own proxy support believes it from
127.0.0.1 by default, which is every local client; the server runs with it
off, see gateway/service.py.)

So the header counts only when the connection comes from an address in
CLIENTTRACK_TRUSTED_PROXIES (none by default). Then it is read from the
right, as each proxy appends the address it saw: the first address that is
not one of our proxies is the client. What a client wrote itself stands to
the left of that and is never read.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer's, or from X-Forwarded-For (all the
    header's values, in order) when the peer is a trusted proxy."""
    if not _trusted(_address(peer), trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # our proxy wrote something unreadable: the proxy is all we know
        if not _trusted(address, trusted):
            return str(address)
    return peer


class TrustedProxies:
    """Sets the ASGI scope's client to :func:`client_address`, so every
    reader of ``request.client`` sees the same address."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted and scope.get("client"):
            peer, port = scope["client"]
            forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
            address = client_address(peer, forwarded, self.trusted)
            if address != peer:
                scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)
