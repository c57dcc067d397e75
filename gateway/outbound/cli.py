"""`clienttrack firm dkim DOMAIN [--check | --rotate | --activate]`: the DNS
records a firm's gateway domain needs for its mail to arrive (DKIM, SPF,
DMARC), checked against DNS on request, and the DKIM key rotation.

Prints the public keys only; the private ones stay in their files."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from gateway.core import db, directory
from gateway.core.clock import system_clock
from gateway.core.settings import Settings
from gateway.outbound import dnsrecords
from gateway.outbound.dkimkeys import DkimKeyError, Generation, KeyStore


def add_parsers(firm_actions, common: Callable[[argparse.ArgumentParser], None]) -> None:
    dkim = firm_actions.add_parser("dkim", help="the DNS records the firm's domain needs: DKIM, SPF, DMARC")
    common(dkim)
    dkim.add_argument("domain")
    what = dkim.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true",
                      help="look the records up (CLIENTTRACK_DNS_NAMESERVERS) and say what is missing or wrong")
    what.add_argument("--rotate", action="store_true", help="make the next DKIM keys, to publish before --activate")
    what.add_argument("--activate", action="store_true",
                      help="sign with the next keys, once DNS has them")
    dkim.set_defaults(run=cmd_firm_dkim)


def cmd_firm_dkim(args: argparse.Namespace, settings: Settings) -> int:
    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        keys = KeyStore(settings.data_dir)
        today = system_clock().date()
        try:
            if args.check:
                return await check(settings, keys.ensure(firm.domain, today), keys.pending(firm.domain))
            if args.activate:
                return await activate(settings, keys, firm.domain)
            pending = keys.rotate(firm.domain, today) if args.rotate else keys.pending(firm.domain)
            print_records(settings, keys.ensure(firm.domain, today), pending)
            return 0
        except DkimKeyError as exc:
            print(f"clienttrack: {exc}", file=sys.stderr)
            return 1
    return db.run(settings, work)


def spf(settings: Settings) -> dnsrecords.Spf:
    return dnsrecords.spf_for(str(settings.relay_url) if settings.relay_url else None, settings.hostname)


def print_records(settings: Settings, active: Generation, pending: Generation | None) -> None:
    print(f"; DNS records for {active.domain}: publish them at the domain's DNS host, then check them with\n"
          f";   clienttrack firm dkim {active.domain} --check\n")
    for record in dnsrecords.records(active, pending, ed25519=settings.dkim_ed25519, spf=spf(settings)):
        print(f"; {record.comment}")
        print(record.zone_line())
        print()
    print(f"; and an MX for {active.domain} that delivers to this gateway: bounces come back to\n"
          f"; bounce+...@{active.domain}, staff write to pay@{active.domain}")
    if pending is not None:
        print(f";\n; Next keys made: publish them beside the current ones, then run\n"
              f";   clienttrack firm dkim {active.domain} --activate")


async def check(settings: Settings, active: Generation, pending: Generation | None) -> int:
    # Here, not at the top: every `clienttrack` command builds this parser,
    # and dnspython's resolver is a sixth of the CLI's imports.
    from gateway.outbound.dnslookup import LookupFailed, Lookups

    lookups = Lookups(settings.dns_nameservers)
    domain = active.domain
    findings: list[dnsrecords.Finding] = []

    async def looked_up(name: str, lookup) -> list[str] | None:
        try:
            return await lookup(name)
        except LookupFailed as exc:
            findings.append(dnsrecords.Finding(dnsrecords.Level.UNKNOWN, name, f"cannot tell: {exc}"))
            return None

    for record in dnsrecords.dkim_records(active, ed25519=settings.dkim_ed25519):
        published = await looked_up(record.name, lookups.txt)
        if published is not None:
            findings.append(dnsrecords.check_dkim(record, published))
    rule = spf(settings)
    published = await looked_up(domain, lookups.txt)
    if published is not None:
        findings.append(dnsrecords.check_spf(domain, rule, published))
    dmarc_name = f"_dmarc.{domain}"
    published = await looked_up(dmarc_name, lookups.txt)
    if published is not None:
        parent = ".".join(domain.split(".")[-2:])
        inherited = (parent, await looked_up(f"_dmarc.{parent}", lookups.txt)) \
            if parent != domain and not published else None
        findings.append(dnsrecords.check_dmarc(dmarc_name, published, inherited))
    hosts = await looked_up(domain, lookups.mx)
    if hosts is not None:
        findings.append(dnsrecords.check_mx(domain, hosts))
    if pending is not None:
        for record in dnsrecords.dkim_records(pending, ed25519=settings.dkim_ed25519, label=" (next)"):
            published = await looked_up(record.name, lookups.txt)
            if published is not None:
                found = dnsrecords.check_dkim(record, published)
                # The next keys are news, not a fault, until --activate.
                findings.append(found if found.level is dnsrecords.Level.OK else
                                dnsrecords.Finding(dnsrecords.Level.WARNING, found.name,
                                                   f"next key, not published yet: {found.message}"))
    for finding in findings:
        print(f"{finding.level.value.upper():<8} {finding.name}: {finding.message}")
    failed = [f for f in findings if f.failed]
    if failed:
        print(f"\n{len(failed)} to fix (or to look up again): `clienttrack firm dkim {domain}` prints the records.")
    return 1 if failed else 0


async def activate(settings: Settings, keys: KeyStore, domain: str) -> int:
    """The next keys sign from now on, once DNS serves their records: mail
    signed with a key receivers cannot find fails DKIM."""
    from gateway.outbound.dnslookup import LookupFailed, Lookups

    pending = keys.pending(domain)
    if pending is None:
        print(f"clienttrack: no next keys for {domain}: make them with --rotate first", file=sys.stderr)
        return 1
    lookups = Lookups(settings.dns_nameservers)
    findings = []
    for record in dnsrecords.dkim_records(pending, ed25519=settings.dkim_ed25519):
        try:
            findings.append(dnsrecords.check_dkim(record, await lookups.txt(record.name)))
        except LookupFailed as exc:
            findings.append(dnsrecords.Finding(dnsrecords.Level.UNKNOWN, record.name, f"cannot tell: {exc}"))
    unready = [f for f in findings if f.level is not dnsrecords.Level.OK]
    if unready:
        for finding in unready:
            print(f"{finding.level.value.upper():<8} {finding.name}: {finding.message}")
        print(f"\nNot activated: publish the next keys first (`clienttrack firm dkim {domain}` prints them).")
        return 1
    old, new = keys.activate(domain)
    print(f"{domain} now signs with {new.rsa_selector}"
          + (f" and {new.ed25519_selector}" if settings.dkim_ed25519 else "") + ".")
    print(f"Keep the old records ({old.rsa_selector}, {old.ed25519_selector}) published for a week: mail "
          "signed before now is still on its way or waiting to be read.")
    return 0
