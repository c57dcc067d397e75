"""Bounce addresses (VERP): every outbound message goes out with an envelope
sender of its own, ``bounce+<id>.<mac>@<firm domain>``, so whatever comes
back to it (a delivery status notification, an out-of-office reply) names
the message it answers without our having to trust anything in it.

The MAC (HMAC-SHA256 under the master key's subkey for bounce addresses,
vault.subkey, over the id and the domain, 64 bits as lower-case hex) is
what stops anyone making up a bounce address: the SMTP gateway refuses one
that does not verify at RCPT, so nobody can mark someone else's request
bounced by guessing ids. Lower-case hex because some mail systems change
the case of a local part.

Checked in constant time; the key never leaves this module's objects.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from gateway.vault.master import subkey

LOCAL_PREFIX = "bounce+"
MAC_HEX = 16  # 64 bits: a forger gets one guess per RCPT, which admission answers 550
_PURPOSE = b"bounce address"
_SHAPE = re.compile(r"bounce\+([1-9][0-9]{0,17})\.([0-9a-f]{%d})@([^@\s]+)" % MAC_HEX)


@dataclass(frozen=True)
class BounceAddress:
    outbound_id: int
    domain: str

    def __str__(self) -> str:
        return f"bounce+{self.outbound_id}@{self.domain}"


def shaped_like(address: str) -> bool:
    """True for anything written like a bounce address, verified or not:
    the outbox never sends to one (mail there would come back to us)."""
    return _SHAPE.fullmatch(address.strip().strip("<>").lower()) is not None


class Verp:
    """Makes and checks bounce addresses under one master key."""

    __slots__ = ("_key",)

    def __init__(self, master_key: bytes) -> None:
        self._key = subkey(master_key, _PURPOSE)

    def __repr__(self) -> str:
        return "Verp(***)"

    def _mac(self, outbound_id: int, domain: str) -> str:
        message = f"{outbound_id}@{domain}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:MAC_HEX]

    def address(self, outbound_id: int, domain: str) -> str:
        """The envelope sender of outbound message ``outbound_id`` from ``domain``."""
        if outbound_id < 1:
            raise ValueError("an outbound id counts from 1")
        domain = domain.strip().lower()
        return f"{LOCAL_PREFIX}{outbound_id}.{self._mac(outbound_id, domain)}@{domain}"

    def verify(self, address: str) -> BounceAddress | None:
        """The message a bounce address names, or None when it is not one of
        ours (wrong shape, or a MAC that does not verify)."""
        match = _SHAPE.fullmatch(address.strip().strip("<>").lower())
        if match is None:
            return None
        outbound_id, mac, domain = int(match[1]), match[2], match[3]
        if not hmac.compare_digest(mac, self._mac(outbound_id, domain)):
            return None
        return BounceAddress(outbound_id, domain)
