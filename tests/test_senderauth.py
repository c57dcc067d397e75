"""Sender authentication before the 250 (gateway.admission.senderauth), offline.

Keys are made here, messages are signed with dkimpy, and the DKIM key
records come from an in-memory resolver (the real one, against a DNS
server on loopback: test_keylookup.py; the whole gateway attacked over
SMTP: test_sender_trust.py).
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta, timezone

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.admission.signatures import aligned, organizational_domain
from gateway.admission import headersection
from gateway.admission.fromheader import FromError, strict_from
from gateway.admission.keylookup import DnsFailure
from gateway.admission.senderauth import Checks, Verdict, authenticate

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

FIRM = "firm.example"
TRUSTED_ID = "mx.firm.example"
BODY = "Hello Jane,\r\nyour invoice is attached.\r\n"


# --------------------------------------------------------------------------
# Keys, messages, a fake resolver
# --------------------------------------------------------------------------


class Key:
    """An RSA key pair as dkimpy wants it: PKCS#1 PEM and a DNS TXT record."""

    def __init__(self, private: rsa.RSAPrivateKey) -> None:
        self.pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def _probable_prime(bits: int) -> int:
    """A random prime (Miller-Rabin, 40 rounds): cryptography will not
    generate RSA keys under 1024 bits, and we need short ones to refuse."""
    while True:
        n = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        d, r = n - 1, 0
        while d % 2 == 0:
            d, r = d // 2, r + 1
        for _ in range(40):
            x = pow(secrets.randbelow(n - 3) + 2, d, n)
            if x in (1, n - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                break
        else:
            return n


def short_key(bits: int) -> Key:
    e = 65537
    while True:
        p, q = _probable_prime(bits // 2), _probable_prime(bits // 2)
        if p != q and (p - 1) % e and (q - 1) % e:
            break
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    )
    return Key(numbers.private_key())


@pytest.fixture(scope="module")
def firm_key() -> Key:
    return Key(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def other_key() -> Key:
    return Key(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def message(from_: str = f"Jane Doe <jane@{FIRM}>", body: str = BODY, headers: tuple[str, ...] = ()) -> bytes:
    lines = [
        *headers,
        f"From: {from_}",
        f"To: pay@{FIRM}",
        "Subject: Invoice 1042 $1,250.00 to=bob@client.example pw=Blue42",
        "Date: Mon, 04 May 2026 10:00:00 -0400",
        f"Message-ID: <1042@{FIRM}>",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def signed(raw: bytes, key: Key, domain: str = FIRM, selector: str = "sel", **options) -> bytes:
    header = dkim.sign(
        raw, selector.encode(), domain.encode(), key.pem,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"], **options,
    )
    return header + raw


class FakeDns:
    """An in-memory Resolver: name -> record bytes, None, or an exception."""

    def __init__(self, records: dict[str, bytes | None | Exception] | None = None) -> None:
        self.records = records or {}
        self.lookups: list[str] = []

    async def __call__(self, name: str) -> bytes | None:
        self.lookups.append(name)
        answer = self.records.get(name)
        if isinstance(answer, Exception):
            raise answer
        return answer


NOW = datetime(2026, 5, 4, 15, 0, tzinfo=timezone.utc)  # an hour after message()'s Date


def checks(dns: FakeDns | None = None, *, trust_loopback: bool = False,
           trusted: tuple[str, ...] = (TRUSTED_ID,), now: datetime = NOW) -> Checks:
    return Checks(trust_loopback=trust_loopback, trusted_authserv_ids=trusted, resolve=dns or FakeDns(), now=now,
                  max_age=timedelta(hours=48), gateway_addresses=[f"pay@{FIRM}"])


async def check(raw: bytes, dns: FakeDns | None = None, *, peer: str = "203.0.113.5", trust_loopback: bool = False,
                trusted: tuple[str, ...] = (TRUSTED_ID,)) -> Verdict:
    return await authenticate(raw, peer_host=peer, checks=checks(dns, trust_loopback=trust_loopback, trusted=trusted))


def refused(verdict: Verdict, *words: str) -> None:
    assert not verdict.ok and verdict.method == ""
    assert verdict.smtp_reply.startswith("550 5.7.1 "), verdict.smtp_reply
    for word in words:
        assert word in verdict.smtp_reply, verdict.smtp_reply
    assert "\r" not in verdict.smtp_reply and "\n" not in verdict.smtp_reply


# --------------------------------------------------------------------------
# DKIM
# --------------------------------------------------------------------------


async def test_valid_aligned_dkim_passes(firm_key):
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    verdict = await check(signed(message(), firm_key), dns)
    assert verdict == Verdict(True, "", f"jane@{FIRM}", "dkim", verdict.reason, f"<1042@{FIRM}>")
    assert f"d={FIRM}" in verdict.reason
    assert dns.lookups == [f"sel._domainkey.{FIRM}"]


async def test_a_line_the_signature_leaves_out_cannot_open_the_body(firm_key):
    # dkimpy skips a "From " line at the end of the header section, so the
    # signature still verifies with it; Python's parser (the reader) takes it
    # as the body's first line: text the client would read that no one signed.
    head, body = signed(message(), firm_key).split(b"\r\n\r\n", 1)
    forged = head + b"\r\nFrom the firm: our bank changed, pay to account 666\r\n\r\n" + body
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    assert dkim.verify(forged, dnsfunc=lambda name, timeout=5: firm_key.record)
    refused(await check(forged, dns), "Ambiguous header section", "not a header field")


async def test_from_address_is_lower_cased(firm_key):
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    verdict = await check(signed(message("Jane <Jane.Doe@Firm.Example>"), firm_key), dns)
    assert verdict.ok and verdict.from_address == "jane.doe@firm.example"


async def test_parent_domain_signature_aligns_with_subdomain_from(firm_key):
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    verdict = await check(signed(message(f"jane@mail.{FIRM}"), firm_key, domain=FIRM), dns)
    assert verdict.ok and verdict.method == "dkim" and verdict.from_address == f"jane@mail.{FIRM}"


async def test_subdomain_signature_aligns_with_parent_from(firm_key):
    dns = FakeDns({f"sel._domainkey.mail.{FIRM}": firm_key.record})
    verdict = await check(signed(message(f"jane@{FIRM}"), firm_key, domain=f"mail.{FIRM}"), dns)
    assert verdict.ok and verdict.method == "dkim"


async def test_signature_of_another_domain_is_refused_without_a_lookup(other_key):
    dns = FakeDns({"sel._domainkey.evil.example": other_key.record})
    verdict = await check(signed(message(), other_key, domain="evil.example"), dns)
    refused(verdict, f"aligned with {FIRM}", "evil.example")
    assert verdict.from_address == f"jane@{FIRM}"
    assert dns.lookups == []  # an unaligned signature cannot help, so no DNS for it


async def test_each_signature_is_checked_not_just_the_first(firm_key, other_key):
    raw = signed(signed(message(), firm_key), other_key, domain="list.example")  # the foreign one is on top
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    verdict = await check(raw, dns)
    assert verdict.ok and verdict.method == "dkim"


async def test_tampered_body_is_refused(firm_key):
    raw = signed(message(), firm_key).replace(b"your invoice", b"pay to IBAN X")
    verdict = await check(raw, FakeDns({f"sel._domainkey.{FIRM}": firm_key.record}))
    refused(verdict, "body hash mismatch")


async def test_tampered_signed_header_is_refused(firm_key):
    raw = signed(message(), firm_key).replace(b"pw=Blue42", b"pw=Red99")
    verdict = await check(raw, FakeDns({f"sel._domainkey.{FIRM}": firm_key.record}))
    refused(verdict, "does not verify")


async def test_body_length_tag_is_refused_even_when_it_would_verify(firm_key):
    raw = signed(message(), firm_key, length=True) + b"\r\namount=9999.00 to=mallory@evil.example\r\n"
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: firm_key.record)  # dkimpy alone says pass
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    verdict = await check(raw, dns)
    refused(verdict, "l=")
    assert dns.lookups == []


async def test_unsigned_message_is_refused():
    verdict = await check(message())
    refused(verdict, f"no valid DKIM signature aligned with {FIRM}", "not signed")
    assert verdict.from_address == f"jane@{FIRM}"


@pytest.mark.parametrize("bits", [512, 768])
async def test_short_key_is_refused(bits):
    key = short_key(bits)
    raw = signed(message(), key)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: key.record, minkey=bits)  # the signature itself is good
    verdict = await check(raw, FakeDns({f"sel._domainkey.{FIRM}": key.record}))
    refused(verdict, f"{bits}-bit key is too short")


async def test_rsa_sha1_signature_is_refused(firm_key):
    raw = signed(message(), firm_key, signature_algorithm=b"rsa-sha1")
    verdict = await check(raw, FakeDns({f"sel._domainkey.{FIRM}": firm_key.record}))
    refused(verdict, "rsa-sha1")


async def test_signature_that_does_not_cover_from_is_refused(firm_key):
    raw = signed(message(), firm_key).replace(b"h=from : to", b"h=to", 1)
    assert b"h=to : subject" in raw
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    refused(await check(raw, dns), "From header is not signed")
    assert dns.lookups == []


async def test_header_line_dkimpy_cannot_read_is_refused(firm_key):
    raw = b":no name\r\n" + signed(message(), firm_key)  # the stdlib skips it, dkimpy refuses it
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    refused(await check(raw, dns), "Ambiguous header section: a line that is not a header field")


async def test_missing_key_record_is_refused(firm_key):
    verdict = await check(signed(message(), firm_key), FakeDns({}))
    refused(verdict, f"no DKIM key published at sel._domainkey.{FIRM}")


async def test_dns_timeout_answers_451(firm_key):
    dns = FakeDns({f"sel._domainkey.{FIRM}": DnsFailure("DNS timed out")})
    verdict = await check(signed(message(), firm_key), dns)
    assert not verdict.ok and verdict.method == ""
    assert verdict.smtp_reply == "451 4.7.5 Could not check the sender's DKIM key (DNS timed out), try again later"
    assert verdict.from_address == f"jane@{FIRM}"


async def test_dns_failure_does_not_matter_when_another_signature_passes(firm_key, other_key):
    raw = signed(signed(message(), firm_key, selector="good"), other_key, selector="slow")
    dns = FakeDns({f"good._domainkey.{FIRM}": firm_key.record, f"slow._domainkey.{FIRM}": DnsFailure("DNS timed out")})
    verdict = await check(raw, dns)
    assert verdict.ok and "s=good" in verdict.reason
    assert sorted(dns.lookups) == [f"good._domainkey.{FIRM}", f"slow._domainkey.{FIRM}"]


async def test_dns_failure_wins_over_a_failed_signature(firm_key, other_key):
    # The unchecked signature might pass: the sender's server should retry.
    raw = signed(signed(message(), firm_key, selector="slow"), other_key, selector="bad")
    dns = FakeDns({f"bad._domainkey.{FIRM}": firm_key.record, f"slow._domainkey.{FIRM}": DnsFailure("DNS timed out")})
    assert (await check(raw, dns)).smtp_reply.startswith("451 4.7.5 ")


async def test_a_resolver_bug_is_not_an_answer(firm_key):
    dns = FakeDns({f"sel._domainkey.{FIRM}": RuntimeError("bug")})
    with pytest.raises(RuntimeError):
        await check(signed(message(), firm_key), dns)


# --------------------------------------------------------------------------
# Authentication-Results from our own MX
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "result, domain",
    [
        (f"dkim=pass header.d={FIRM} header.s=sel", FIRM),
        (f"dkim=pass (2048-bit key) header.d=mail.{FIRM}", f"mail.{FIRM}"),
        (f"spf=pass smtp.mailfrom={FIRM}; dkim=pass header.d={FIRM} header.b=XXXX", FIRM),
    ],
)
async def test_trusted_authentication_results_pass(firm_key, result, domain):
    raw = signed(message(), firm_key, domain=domain)
    if "header.b=XXXX" in result:
        result = result.replace("XXXX", raw.split(b"b=")[-1][:12].strip().decode())
    raw = f"Authentication-Results: {TRUSTED_ID.upper()}; {result}\r\n".encode() + raw
    dns = FakeDns()
    verdict = await check(raw, dns)
    assert verdict.ok and verdict.method == "authres" and verdict.from_address == f"jane@{FIRM}", verdict
    assert dns.lookups == []


async def test_authentication_results_from_an_untrusted_id_are_ignored():
    result = f"dkim=pass header.d={FIRM}; dmarc=pass header.from={FIRM}"
    raw = message(headers=(f"Authentication-Results: mx.evil.example; {result}",))
    refused(await check(raw), "not signed")


async def test_authentication_results_are_ignored_when_no_id_is_trusted():
    raw = message(headers=(f"Authentication-Results: {TRUSTED_ID}; dkim=pass header.d={FIRM}",))
    refused(await check(raw, trusted=()))


@pytest.mark.parametrize(
    "result",
    [
        "dkim=pass header.d=evil.example",
        "dmarc=pass header.from=evil.example",
        f"dmarc=pass header.from=mail.{FIRM}",  # describes another From
        f"dkim=fail header.d={FIRM}; dmarc=fail header.from={FIRM}",
        f"dkim=pass header.i=@{FIRM}",  # no header.d
        # DMARC passes on SPF alone: it says nothing of the Subject.
        f"spf=pass smtp.mailfrom={FIRM}; dmarc=pass header.from={FIRM}",
        f"dkim=pass header.d=mail.{FIRM}",  # no signature of that d= in the message
        f"dkim=pass header.d={FIRM} header.s=other",  # nor of that selector
        f"dkim=pass header.d={FIRM} header.b=AAAAAAAAAAAA",  # nor with that b=
    ],
)
async def test_trusted_authentication_results_that_do_not_pass_for_this_from(firm_key, result):
    # Signed, but the key is not published: only the results could pass it.
    raw = f"Authentication-Results: {TRUSTED_ID}; {result}\r\n".encode() + signed(message(), firm_key)
    refused(await check(raw))


async def test_trusted_results_for_a_signature_of_the_wrong_shape_do_not_pass(firm_key):
    raw = dkim.sign(message(), b"sel", FIRM.encode(), firm_key.pem, include_headers=[b"from", b"to"]) + message()
    raw = f"Authentication-Results: {TRUSTED_ID}; dkim=pass header.d={FIRM}\r\n".encode() + raw
    refused(await check(raw), f"{TRUSTED_ID}: d={FIRM}: Subject, Date, Message-ID not signed")


async def test_unreadable_authentication_results_are_ignored():
    raw = message(headers=(f"Authentication-Results: {TRUSTED_ID}; dkim pass d {FIRM}",))
    refused(await check(raw))


# --------------------------------------------------------------------------
# Strict From
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        f'"boss@{FIRM}" <evil@evil.example>',
        f"boss@{FIRM} <evil@evil.example>",
        f"=?utf-8?q?boss=40{FIRM}?= <evil@evil.example>",
        f'"boss\uff20{FIRM}" <evil@evil.example>',  # fullwidth at sign
        f"evil@evil.example (boss@{FIRM})",
        f"boss@{FIRM} (evil@evil.example)",
        f"Jane Doe (Accounting) <jane@{FIRM}>",
        f"=?utf-8?q?boss=40{FIRM}?=@evil.example",
        f"alice@{FIRM})<evil@evil.example>",
    ],
)
async def test_display_name_and_comment_tricks_are_refused(firm_key, value):
    # Even a perfectly signed message of the firm is refused: the From is ambiguous.
    dns = FakeDns({f"sel._domainkey.{FIRM}": firm_key.record})
    verdict = await check(signed(message(value), firm_key), dns)
    refused(verdict, "550 5.7.1 From header: ")
    assert verdict.from_address == "" and dns.lookups == []


async def test_two_from_headers_are_refused(firm_key):
    raw = signed(message(headers=("From: evil@evil.example",)), firm_key)
    verdict = await check(raw, FakeDns({f"sel._domainkey.{FIRM}": firm_key.record}))
    refused(verdict, "Ambiguous header section: more than one From header")


@pytest.mark.parametrize(
    "value, words",
    [
        (f"jane@{FIRM}, evil@evil.example", "2 addresses"),
        (f"Staff: jane@{FIRM};", "group"),
        ("", "0 addresses"),
        ("undisclosed", "malformed"),
        (f'"jane doe"@{FIRM}', "dot-atom"),
        ("jane@[192.0.2.1]", "host name"),
        ("jane@localhost", "host name"),
        (f"jane@{FIRM}.", "malformed"),
        (f"jane=?utf-8?q?x?=@{FIRM}", "encoded-word"),
        ("jane@firm\u3002example", "host name"),  # an ideographic full stop
        ("j" * 64 + "@" + "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + ".example", "longer than 254"),
    ],
)
async def test_from_that_is_not_one_plain_mailbox_is_refused(value, words):
    refused(await check(message(value)), "From header: ", words)


async def test_missing_from_is_refused():
    raw = b"To: pay@firm.example\r\nSubject: hi\r\n\r\nbody\r\n"
    refused(await check(raw), "From header: missing")


@pytest.mark.parametrize(
    "raw",
    [
        b"From : boss@firm.example\r\nFrom: jane@firm.example\r\n\r\nbody\r\n",
        b"To: pay@firm.example\r\nFrom boss@firm.example\r\nFrom: jane@firm.example\r\n\r\nbody\r\n",
        b"From: jane@firm.example\r\nnot a header\r\nFrom: boss@firm.example\r\n\r\nbody\r\n",
        b" From: boss@firm.example\r\nFrom: jane@firm.example\r\n\r\nbody\r\n",
    ],
)
async def test_header_lines_the_stdlib_would_skip_are_refused(raw):
    refused(await check(raw, peer="127.0.0.1", trust_loopback=True), "not a header field")


async def test_a_bare_cr_that_would_hide_a_second_from_is_refused():
    raw = b"From: jane@firm.example\rFrom: boss@evil.example\r\n\r\nbody\r\n"
    refused(await check(raw, peer="127.0.0.1", trust_loopback=True), "bare CR")


def from_of(raw: bytes) -> str:
    """The strict From of a message, as authenticate reads it."""
    return strict_from(headersection.read(raw).values("from"))


def test_from_that_is_not_utf8_is_refused():
    with pytest.raises(FromError, match="UTF-8"):
        from_of(b"From: J\xe9r\xf4me <jerome@firm.example>\r\n\r\nbody\r\n")


@pytest.mark.parametrize(
    "value, address",
    [
        ("jane@firm.example", "jane@firm.example"),
        ("<jane@firm.example>", "jane@firm.example"),
        ('"Doe, Jane (Accounting)" <Jane.Doe@Firm.Example>', "jane.doe@firm.example"),
        ("=?utf-8?q?J=C3=A9r=C3=B4me?= <jerome+pay@firm.example>", "jerome+pay@firm.example"),
        ("Jérôme <jérôme@firm.example>", "jérôme@firm.example"),
        ("Jane <jane@exämple.ca>", "jane@exämple.ca"),
    ],
)
def test_plain_mailboxes_are_accepted(value, address):
    assert from_of(f"From: {value}\r\nSubject: x\r\n\r\nbody\r\n".encode()) == address


# --------------------------------------------------------------------------
# Loopback trust (--demo)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
async def test_loopback_is_trusted_with_the_flag(peer):
    verdict = await check(message(), peer=peer, trust_loopback=True)
    assert verdict.ok and verdict.method == "trusted-peer" and verdict.from_address == f"jane@{FIRM}"


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1"])
async def test_loopback_is_not_trusted_without_the_flag(peer):
    refused(await check(message(), peer=peer, trust_loopback=False), "not signed")


@pytest.mark.parametrize(
    "peer", ["203.0.113.5", "10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1", "localhost", ""]
)
async def test_other_peers_are_not_trusted_even_with_the_flag(peer):
    refused(await check(message(), peer=peer, trust_loopback=True), "not signed")


async def test_peers_asked_again_get_the_same_answers_from_the_remembered_ones():
    # The loopback test is remembered per peer address (it runs at every
    # DATA); peers taking turns must each keep their own answer.
    from gateway.admission.senderauth import _is_loopback

    peers = ["127.0.0.1", "203.0.113.5", "::ffff:127.0.0.1", "::ffff:10.0.0.1"] * 3
    asked = _is_loopback.cache_info().hits
    verdicts = [await check(message(), peer=peer, trust_loopback=True) for peer in peers]
    assert [v.method == "trusted-peer" for v in verdicts] == [True, False, True, False] * 3
    assert _is_loopback.cache_info().hits - asked >= 8


async def test_loopback_trust_still_needs_a_strict_from():
    spoofed = message(f'"boss@{FIRM}" <evil@evil.example>')
    refused(await check(spoofed, peer="127.0.0.1", trust_loopback=True), "From header")


# --------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain, org",
    [
        ("firm.example", "firm.example"),
        ("a.b.firm.example", "firm.example"),
        ("mail.firm.co.uk", "firm.co.uk"),
        ("firm.com.au", "firm.com.au"),
        ("mail.firm.qc.ca", "firm.qc.ca"),
        ("mail.firm.ca", "firm.ca"),
        ("demo.localhost", "demo.localhost"),
    ],
)
def test_organizational_domain(domain, org):
    assert organizational_domain(domain) == org


@pytest.mark.parametrize(
    "d, from_domain, expected",
    [
        ("firm.example", "firm.example", True),
        ("firm.example", "mail.firm.example", True),
        ("mail.firm.example", "firm.example", True),
        ("a.firm.example", "b.firm.example", True),
        ("evil.example", "firm.example", False),
        ("firmexample", "firm.example", False),
        ("evil.co.uk", "firm.co.uk", False),
        ("co.uk", "firm.co.uk", False),
        ("evil.on.ca", "firm.on.ca", False),
    ],
)
def test_relaxed_alignment(d, from_domain, expected):
    assert aligned(d, from_domain) is expected


def test_a_remembered_from_line_still_gets_the_section_checks_and_a_refusal_is_never_remembered():
    good = b"From: Jane <jane@firm.example>\r\n\r\nbody\r\n"
    assert from_of(good) == from_of(good) == "jane@firm.example"
    # The same From line, now beside a second From header: refused though the line was accepted before.
    with pytest.raises(headersection.Ambiguous, match="more than one From"):
        from_of(b"From: Jane <jane@firm.example>\r\nFrom: boss@evil.example\r\n\r\nbody\r\n")
    for _ in range(2):
        with pytest.raises(FromError, match="comments"):
            from_of(b"From: jane@firm.example (boss@evil.example)\r\n\r\nbody\r\n")
