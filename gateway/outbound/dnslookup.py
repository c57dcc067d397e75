"""DNS lookups for ``firm dkim --check``: every TXT record at a name (SPF and
DMARC need all of them, a DKIM key record is one of them) and the MX
hosts, through the resolvers CLIENTTRACK_DNS_NAMESERVERS names (the
system's otherwise), as the receivers of the gateway's mail will see them.
Answers are not cached: a check is asked for right after publishing."""

from __future__ import annotations

from typing import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from gateway.core.resolvers import resolver_for


class LookupFailed(Exception):
    """No answer (time-out, SERVFAIL, unreachable): the record's state is unknown."""


class Lookups:
    def __init__(self, nameservers: Sequence[str] = (), timeout: float = 5.0) -> None:
        self._resolver = resolver_for(nameservers, timeout)

    async def _answer(self, name: str, rdtype: str):
        try:
            return await self._resolver.resolve(dns.name.from_text(name), rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout:
            raise LookupFailed(f"{name} {rdtype}: no answer in time") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{name} {rdtype}: {type(exc).__name__}") from None

    async def txt(self, name: str) -> list[str]:
        """Every TXT record at ``name``, each record's strings joined (RFC 7208
        3.3); an empty list when there are none."""
        answer = await self._answer(name, "TXT")
        if answer is None:
            return []
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]

    async def mx(self, name: str) -> list[str]:
        """The MX hosts of ``name``, best first."""
        answer = await self._answer(name, "MX")
        if answer is None:
            return []
        return [record.exchange.to_text(omit_final_dot=True) for record in sorted(answer, key=lambda r: r.preference)]
