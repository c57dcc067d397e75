"""The DNS records a firm's sending domain needs, and what is wrong with the
ones it has (``clienttrack firm dkim DOMAIN [--check]``).

Three records make the gateway's mail pass DMARC at Gmail, Microsoft and
Yahoo, all at the firm's gateway domain (the From and the envelope sender's
domain alike, so both align):

- DKIM: the public key of each signing key, a TXT record at
  ``<selector>._domainkey.<domain>``;
- SPF: which hosts may send with the domain as envelope sender (the bounce
  addresses), a TXT record ``v=spf1 ...`` at the domain, for the relay the
  gateway uses or, without one, the host itself;
- DMARC: the policy, a TXT record at ``_dmarc.<domain>``; we suggest
  ``p=none`` to start (watch the reports), then quarantine, then reject.

Plus an MX, so that bounces reach the gateway's bounce addresses (and staff
mail reaches pay@). Everything here is pure: lookups are dnslookup.py's,
the printing is the command line's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from gateway.outbound.dkimkeys import Generation

DMARC_START = "v=DMARC1; p=none; adkim=s; aspf=s"

# The SPF include of relays we know (as their providers document it); any
# other relay gets include:<its domain>, marked as a guess to check.
PROVIDER_INCLUDES = {
    "sendgrid.net": "sendgrid.net",
    "mailgun.org": "mailgun.org",
    "amazonaws.com": "amazonses.com",
    "gmail.com": "_spf.google.com",
    "google.com": "_spf.google.com",
    "office365.com": "spf.protection.outlook.com",
    "outlook.com": "spf.protection.outlook.com",
    "postmarkapp.com": "spf.mtasv.net",
    "mailjet.com": "spf.mailjet.com",
    "sparkpostmail.com": "_spf.sparkpostmail.com",
}


@dataclass(frozen=True)
class Record:
    name: str  # without the final dot
    type: str  # "TXT" or "MX"
    value: str
    comment: str

    def zone_line(self) -> str:
        """As a zone file takes it (long TXT values as 255-byte strings)."""
        if self.type != "TXT":
            return f"{self.name}. IN {self.type} {self.value}"
        chunks = [self.value[i:i + 255] for i in range(0, len(self.value), 255)] or [""]
        if len(chunks) == 1:
            return f'{self.name}. IN TXT "{chunks[0]}"'
        return f"{self.name}. IN TXT ( " + "\n    ".join(f'"{c}"' for c in chunks) + " )"


@dataclass(frozen=True)
class Spf:
    mechanism: str  # "a:gw.example" or "include:sendgrid.net"
    note: str  # why this one, and what to check


def spf_for(relay_url: str | None, hostname: str) -> Spf:
    """The SPF mechanism that lets the gateway's mail out: the relay's
    provider, or this host when mail leaves from here (no relay, or a
    Postfix on the same host)."""
    host = (urlsplit(relay_url).hostname or "") if relay_url else ""
    if host and not _local(host):
        parent = ".".join(host.lower().split(".")[-2:])
        known = PROVIDER_INCLUDES.get(parent)
        if known:
            return Spf(f"include:{known}", f"mail leaves through {host}: its provider's SPF include")
        return Spf(f"include:{parent}", f"mail leaves through {host}: a guess from its name; use the include "
                                        "your provider documents")
    note = "mail leaves from this host: the name must resolve to its public address"
    if hostname.endswith(".localhost") or "." not in hostname:
        note += f" (set CLIENTTRACK_HOSTNAME to the host's public name; {hostname!r} is not one)"
    return Spf(f"a:{hostname}", note)


def _local(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dkim_records(generation: Generation, *, ed25519: bool, label: str = "") -> list[Record]:
    domain = generation.domain
    out = [Record(f"{generation.rsa_selector}._domainkey.{domain}", "TXT", generation.rsa_record(),
                  f"DKIM{label}: the RSA key the gateway signs with")]
    if ed25519:
        out.append(Record(f"{generation.ed25519_selector}._domainkey.{domain}", "TXT", generation.ed25519_record(),
                          f"DKIM{label}: the Ed25519 key (CLIENTTRACK_DKIM_ED25519 is on)"))
    return out


def records(active: Generation, pending: Generation | None, *, ed25519: bool, spf: Spf) -> list[Record]:
    """Everything to publish for the domain."""
    domain = active.domain
    out = dkim_records(active, ed25519=ed25519)
    if pending is not None:
        out += dkim_records(pending, ed25519=ed25519, label=" (next, after `--activate`)")
    out += [
        Record(domain, "TXT", f"v=spf1 {spf.mechanism} ~all", f"SPF: {spf.note}"),
        Record(f"_dmarc.{domain}", "TXT", DMARC_START,
               "DMARC: report only to start; add rua=mailto:ADDRESS for reports, then p=quarantine, p=reject"),
    ]
    return out


# -- checking ---------------------------------------------------------------------


class Level(str, Enum):
    OK = "ok"
    WARNING = "warning"
    MISSING = "missing"
    WRONG = "wrong"
    UNKNOWN = "unknown"  # DNS did not answer: not a pass


@dataclass(frozen=True)
class Finding:
    level: Level
    name: str
    message: str

    @property
    def failed(self) -> bool:
        return self.level in (Level.MISSING, Level.WRONG, Level.UNKNOWN)


def tags(record: str) -> dict[str, str]:
    """``v=DKIM1; k=rsa; p=...`` -> {"v": "DKIM1", ...} (tag names lower case,
    white space inside values dropped, as RFC 6376 3.2 reads them)."""
    out = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            out.setdefault(name.strip().lower(), "".join(value.split()))
    return out


def check_dkim(expected: Record, published: list[str] | None) -> Finding:
    if not published:
        return Finding(Level.MISSING, expected.name, "no TXT record: publish the one above")
    want = tags(expected.value)
    keys = [tags(text) for text in published]
    if len(keys) > 1:
        return Finding(Level.WRONG, expected.name, f"{len(keys)} TXT records: receivers take one at random; "
                                                   "keep only the one above")
    found = keys[0]
    if found.get("v", "DKIM1") != "DKIM1" or found.get("k", "rsa") != want["k"]:
        return Finding(Level.WRONG, expected.name, f"not a {want['k']} DKIM key record (v={found.get('v')}, "
                                                   f"k={found.get('k', 'rsa')})")
    if not found.get("p"):
        return Finding(Level.WRONG, expected.name, "the key is empty (revoked): publish the one above")
    if found["p"] != want["p"]:
        return Finding(Level.WRONG, expected.name, "a different key: the gateway signs with the one above "
                                                   "(an old record, or another server's?)")
    return Finding(Level.OK, expected.name, "the gateway's key")


def check_spf(domain: str, spf: Spf, published: list[str] | None) -> Finding:
    found = [text for text in (published or []) if text.lower().startswith("v=spf1")
             and (len(text) == 6 or text[6] == " ")]
    if not found:
        return Finding(Level.MISSING, domain, "no SPF record: publish the one above")
    if len(found) > 1:
        return Finding(Level.WRONG, domain, f"{len(found)} SPF records: receivers treat that as an error "
                                            "(permerror); merge them into one")
    terms = found[0].lower().split()[1:]
    if any(term in ("all", "+all") for term in terms):
        return Finding(Level.WRONG, domain, f"{found[0]!r} lets anyone send as the domain (+all)")
    if spf.mechanism.lower() not in terms and not any(t.lstrip("+") == spf.mechanism.lower() for t in terms):
        return Finding(Level.WARNING, domain, f"{found[0]!r} does not name {spf.mechanism} ({spf.note}); "
                                              "unless another term covers it, the gateway's mail fails SPF")
    if not any(term in ("-all", "~all") for term in terms) and not any(t.startswith("redirect=") for t in terms):
        return Finding(Level.WARNING, domain, f"{found[0]!r} does not end in ~all or -all")
    return Finding(Level.OK, domain, found[0])


def check_dmarc(name: str, published: list[str] | None, parent: tuple[str, list[str] | None] | None = None) -> Finding:
    found = [text for text in (published or []) if tags(text).get("v") == "DMARC1"]
    if len(found) > 1:
        return Finding(Level.WRONG, name, f"{len(found)} DMARC records: receivers ignore them all; keep one")
    if not found:
        if parent is not None:
            inherited = [text for text in (parent[1] or []) if tags(text).get("v") == "DMARC1"]
            if len(inherited) == 1:
                policy = tags(inherited[0])
                return Finding(Level.OK, name, f"none here; the organisational domain's applies ({parent[0]}: "
                                               f"p={policy.get('p')}, sp={policy.get('sp', policy.get('p'))})")
        return Finding(Level.MISSING, name, "no DMARC record: publish the one above (Gmail and Yahoo require "
                                            "one from bulk senders)")
    policy = tags(found[0]).get("p", "")
    if policy not in ("none", "quarantine", "reject"):
        return Finding(Level.WRONG, name, f"{found[0]!r} has no valid p= (none, quarantine or reject)")
    if policy == "none":
        return Finding(Level.OK, name, f"{found[0]} (reports only: move to quarantine once they are clean)")
    return Finding(Level.OK, name, found[0])


def check_mx(domain: str, hosts: list[str] | None) -> Finding:
    if not hosts:
        return Finding(Level.WARNING, domain, "no MX record: bounces (and staff mail to pay@) cannot reach "
                                              "the gateway")
    return Finding(Level.OK, domain, "MX " + ", ".join(hosts) + ": must deliver to the gateway (bounces come "
                                                              "back to bounce+...@ this domain)")
