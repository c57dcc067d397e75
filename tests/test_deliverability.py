"""The DNS records `clienttrack firm dkim` prints are the ones the gateway's
mail verifies against: a client mail and a staff confirmation from the
Maildir, checked by dkimpy through a real DNS server on loopback
(tests/dnsserver.py) serving exactly what the command printed; `--check`
reads them back through CLIENTTRACK_DNS_NAMESERVERS; rotation waits for DNS."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import dkim
import dns.resolver

from gateway.core.directory import DEMO_DOMAIN
from gateway.outbound.dkimkeys import KeyStore
from gateway.service import prepare, running
from tests.conftest import DEMO_STAFF, command_database, make_settings, request_mail, send, settled
from tests.dnsserver import LoopbackDns
from tests.test_cli import CLI

SUBJECT = 'Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint="First pet"'


async def clienttrack(data_dir: Path, database: str, *words: str, **env: str) -> subprocess.CompletedProcess:
    """The command as an operator runs it, in a thread: the DNS server it
    may ask lives in this test's event loop."""
    options = ["--database-url", database] if command_database(data_dir) else []
    environ = {**os.environ, **{f"CLIENTTRACK_{k.upper()}": v for k, v in env.items()}}
    return await asyncio.to_thread(subprocess.run, [*CLI, *words, "--data-dir", str(data_dir), *options],
                                   capture_output=True, text=True, timeout=60, env=environ)


def zone_records(printed: str) -> dict[str, str]:
    """name -> TXT value, from the zone lines the command printed."""
    records = {}
    for match in re.finditer(r"^(\S+)\. IN TXT (\(.*?\)|\"[^\"\n]*\")", printed, re.M | re.S):
        records[match[1]] = "".join(re.findall(r"\"([^\"]*)\"", match[2]))
    return records


def maildir_raw(data_dir: Path) -> dict[str, bytes]:
    """recipient -> the raw file, as a reader of the Maildir finds it."""
    out = {}
    for path in sorted((data_dir / "outbox" / "new").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        raw = path.read_bytes()
        to = re.search(rb"^To: (.*)$", raw, re.M)[1].decode().strip()
        out.setdefault(to, raw)
    return out


def head(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode()


def verify_through_dns(raw: bytes, server: LoopbackDns) -> list[bool]:
    """Every DKIM signature of ``raw``, checked by dkimpy with its keys
    looked up from ``server``, as a receiver does. Blocking: run in a thread."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], server.port
    resolver.lifetime = 5.0

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode(), "TXT", tcp=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(next(iter(answer)).strings)

    checker = dkim.DKIM(raw)
    count = len(re.findall(rb"^DKIM-Signature:", raw, re.M))
    return [checker.verify(idx=i, dnsfunc=lookup) for i in range(count)]


async def test_client_mail_and_confirmation_verify_against_the_printed_records_through_dns(tmp_path):
    settings = make_settings(tmp_path, dkim_ed25519=True)
    async with running(settings) as gw:
        await send(gw, request_mail(SUBJECT))
        await settled()
    mails = maildir_raw(settings.data_dir)
    client, confirmation = mails["jane@client.example"], mails[DEMO_STAFF]
    printed = await clienttrack(settings.data_dir, settings.database, "firm", "dkim", "demo.localhost",
                                dkim_ed25519="true")
    assert printed.returncode == 0, printed.stderr
    records = zone_records(printed.stdout)
    assert sorted(records) == sorted([f"{selector}._domainkey.demo.localhost" for selector in
                                      re.findall(r"s=([\w-]+);", re.sub(r"\s+", "", head(client)))]
                                     + ["demo.localhost", "_dmarc.demo.localhost"])
    async with LoopbackDns() as server:
        for name, value in records.items():
            server.publish(name, value.encode())
        for raw in (client, confirmation):
            assert raw.startswith(b"Return-Path: <bounce+")
            # Ed25519 first, then RSA: both verify.
            assert await asyncio.to_thread(verify_through_dns, raw, server) == [True, True]

        checked = await clienttrack(settings.data_dir, settings.database, "firm", "dkim", "demo.localhost",
                                    "--check", dkim_ed25519="true", dns_nameservers=server.address)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        lines = checked.stdout.splitlines()
        assert sum(line.startswith("OK ") for line in lines) == 4  # two DKIM keys, SPF, DMARC
        assert any(line.startswith("WARNING  demo.localhost: no MX") for line in lines)

        # What an operator gets wrong: a key from elsewhere, no DMARC, two SPF records' worth of trouble.
        rsa_name = next(name for name in records if "-rsa._domainkey." in name)
        server.publish(rsa_name, b"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong")
        del server.records["_dmarc.demo.localhost"]
        server.publish("demo.localhost", b"v=spf1 +all")
        checked = await clienttrack(settings.data_dir, settings.database, "firm", "dkim", "demo.localhost",
                                    "--check", dkim_ed25519="true", dns_nameservers=server.address)
        assert checked.returncode == 1
        assert f"WRONG    {rsa_name}: a different key" in checked.stdout
        assert "MISSING  _dmarc.demo.localhost: no DMARC record" in checked.stdout
        assert "WRONG    demo.localhost: 'v=spf1 +all' lets anyone send" in checked.stdout


async def test_rotation_waits_for_dns_then_the_next_mail_verifies_with_the_new_key(tmp_path):
    settings = make_settings(tmp_path)
    data, database = settings.data_dir, settings.database
    async with running(settings) as gw:
        await send(gw, request_mail(SUBJECT))
        await settled()
        before = zone_records((await clienttrack(data, database, "firm", "dkim", "demo.localhost")).stdout)
        rotated = await clienttrack(data, database, "firm", "dkim", "demo.localhost", "--rotate")
        assert rotated.returncode == 0 and "--activate" in rotated.stdout
        after = zone_records(rotated.stdout)
        [new_name] = set(after) - set(before)
        async with LoopbackDns() as server:
            for name, value in before.items():
                server.publish(name, value.encode())
            refused = await clienttrack(data, database, "firm", "dkim", "demo.localhost", "--activate",
                                        dns_nameservers=server.address)
            assert refused.returncode == 1 and f"MISSING  {new_name}" in refused.stdout
            server.publish(new_name, after[new_name].encode())
            activated = await clienttrack(data, database, "firm", "dkim", "demo.localhost", "--activate",
                                          dns_nameservers=server.address)
            assert activated.returncode == 0, activated.stdout + activated.stderr
            assert f"now signs with {new_name.split('._domainkey')[0]}" in activated.stdout
            # The running gateway signs the next mail with the new key, no restart.
            await send(gw, request_mail(SUBJECT.replace("1042", "1043").replace("jane@", "joe@")))
            await settled()
            raw = maildir_raw(data)["joe@client.example"]
            assert f"s={new_name.split('._domainkey')[0]};" in re.sub(r"\s+", "", head(raw))
            assert await asyncio.to_thread(verify_through_dns, raw, server) == [True]


async def test_serve_makes_the_demo_firms_keys_before_its_workers_start(tmp_path):
    # As `firm add` does: the records can be printed before the first mail,
    # and the workers do not each make a pair at their first mail.
    settings = make_settings(tmp_path)
    assert KeyStore(settings.data_dir).active(DEMO_DOMAIN) is None
    await prepare(settings)
    made = KeyStore(settings.data_dir).active(DEMO_DOMAIN)
    assert made is not None
    await prepare(settings)  # a restart keeps them
    assert KeyStore(settings.data_dir).active(DEMO_DOMAIN) == made
