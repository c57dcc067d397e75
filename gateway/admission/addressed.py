"""Signed mail to someone else is not a command.

An admin's ordinary signed mail to a stranger ("Re: lunch tomorrow?", sent
To: that stranger) verifies anywhere: the stranger could send it on to the
gateway. Where a signature covers To or Cc (Gmail's covers both; Microsoft
365's neither, so this cannot be asked of every message), the signed To and
Cc must name the gateway address the message was sent to. The names count
as covered when any DKIM-Signature aligned with the From lists them in h=:
an attacker can add signatures, but adding one only adds names.
"""

from __future__ import annotations

from email.utils import getaddresses

from gateway.admission.headersection import HeaderSection
from gateway.admission.signatures import Signature


def problem(section: HeaderSection, signatures: list[Signature], gateway_addresses: list[str]) -> str:
    """Why the message is not addressed to the gateway, or ""."""
    covered = {name for s in signatures if s.aligned for name in s.signed} & {"to", "cc"}
    if not covered:
        return ""
    named = {address.lower() for name in sorted(covered) for value in [section.text(name) or ""]
             for _display, address in getaddresses([value])}
    wanted = {address.lower() for address in gateway_addresses}
    if named & wanted:
        return ""
    fields = " or ".join(name.title() for name in sorted(covered, reverse=True))
    return (f"{', '.join(sorted(wanted))} is not in the signed {fields} "
            "(mail sent to someone else is not a command)")
