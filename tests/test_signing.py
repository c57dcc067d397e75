"""DKIM signing of outbound mail, checked with dkimpy's own verifier (the
records come from the key store; tests/test_deliverability.py asks a real DNS
server for them)."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import dkim
import pytest

from gateway.core.paths import TEMPLATES_DIR
from gateway.outbound.compose import Composer, to_bytes
from gateway.outbound.dkimkeys import KeyStore
from gateway.outbound import signing
from gateway.outbound.signing import Signer, SigningError

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

NOW = datetime(2026, 5, 14, 9, 30, tzinfo=timezone.utc)


def clock() -> datetime:
    return NOW


def client_mail() -> bytes:
    composer = Composer(TEMPLATES_DIR / "email", hostname="gw.test")
    message = composer.client_request(
        firm_name="Demo Accounting", firm_domain="demo.localhost", staff_email="staff@demo.localhost",
        staff_name="Sam", client_email="jane@client.example", title="Invoice 1042", invoice="1042",
        amount="$1,250.00", hint="First pet", link="https://pay.example/r/abc", expires_on="2026-06-13", now=NOW)
    return to_bytes(message)


def records(store: KeyStore, domain: str = "demo.localhost") -> dict[bytes, bytes]:
    generation = store.active(domain)
    return {f"{generation.rsa_selector}._domainkey.{domain}.".encode(): generation.rsa_record().encode(),
            f"{generation.ed25519_selector}._domainkey.{domain}.".encode(): generation.ed25519_record().encode()}


def split_signature(signed: bytes) -> tuple[bytes, bytes]:
    """(the first DKIM-Signature header with its folded lines, the rest)."""
    lines = signed.split(b"\r\n")
    end = 1
    while lines[end][:1] in (b" ", b"\t"):
        end += 1
    return b"\r\n".join(lines[:end]) + b"\r\n", b"\r\n".join(lines[end:])


def tags_of(signed: bytes) -> dict[str, str]:
    header = re.sub(rb"\s+", b"", split_signature(signed)[0].removeprefix(b"DKIM-Signature:")).decode()
    return dict(tag.split("=", 1) for tag in header.split(";") if tag)


def verified(signed: bytes, published: dict[bytes, bytes]) -> list[bool]:
    """Each signature's verdict, in order, with keys from ``published``."""
    count = len(re.findall(rb"^DKIM-Signature:", signed, re.M))
    checker = dkim.DKIM(signed)

    def verdict(index: int) -> bool:
        try:
            return checker.verify(idx=index, dnsfunc=lambda name, timeout=5: published.get(name))
        except dkim.DKIMException:  # a body hash mismatch raises rather than answer False
            return False

    return [verdict(i) for i in range(count)]


def test_an_outbound_message_is_signed_with_the_from_domains_rsa_key(tmp_path):
    store = KeyStore(tmp_path)
    signed = Signer(store, clock).sign(client_mail())
    assert verified(signed, records(store)) == [True]
    tags = tags_of(signed)
    assert tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed" and tags["d"] == "demo.localhost"
    assert tags["s"] == store.active("demo.localhost").rsa_selector
    assert tags["t"] == str(int(NOW.timestamp()))  # our clock, not the library's
    assert tags["h"] == ("from:from:subject:subject:to:date:message-id:reply-to:"
                                          "mime-version:content-type")


def test_ed25519_signs_too_when_the_operator_turns_it_on(tmp_path):
    store = KeyStore(tmp_path)
    signed = Signer(store, clock, ed25519=True).sign(client_mail())
    assert tags_of(signed)["a"] == "ed25519-sha256"
    assert verified(signed, records(store)) == [True, True]
    # A receiver without Ed25519 in DNS still has the RSA signature.
    generation = store.active("demo.localhost")
    rsa_only = {k: v for k, v in records(store).items() if generation.rsa_selector.encode() in k}
    assert verified(signed, rsa_only) == [False, True]


@pytest.mark.parametrize("tamper", [
    lambda m: b"From: Mallory <pay@demo.localhost>\r\n" + m,  # a second From, on top
    lambda m: m.replace(b"\r\n\r\n", b"\r\nFrom: mallory@evil.example\r\n\r\n", 1),  # or below
    lambda m: m.replace(b"\r\n\r\n", b"\r\nSubject: Urgent: pay to this account instead\r\n\r\n", 1),
    lambda m: m.replace(b"\r\n\r\n", b"\r\nReply-To: mallory@evil.example\r\n\r\n", 1),
    lambda m: m.replace(b"$1,250.00", b"$9,250.00"),
    lambda m: m.replace(b"https://pay.example", b"https://evil.example"),
])
def test_added_from_subject_or_reply_to_and_changed_bodies_fail(tmp_path, tamper):
    store = KeyStore(tmp_path)
    signer = Signer(store, clock)
    signed = signer.sign(client_mail())
    head, rest = split_signature(signed)
    assert verified(head + tamper(rest), records(store)) == [False]


def test_a_relay_refolding_headers_does_not_break_the_signature(tmp_path):
    store = KeyStore(tmp_path)
    signed = Signer(store, clock).sign(client_mail())
    # More space around the Subject's value and between its encoded words, a signed header folded anew.
    refolded = signed.replace(b"\r\nSubject: ", b"\r\nSubject:   ").replace(b"?=\r\n =?utf-8", b"?=\r\n\t  =?utf-8") \
        .replace(b"\r\nReply-To: Sam <staff@demo.localhost>", b"\r\nReply-To: Sam\r\n  <staff@demo.localhost>")
    assert refolded.count(b"\r\nSubject:   ") == refolded.count(b"\r\n\t  =?utf-8") == 1
    assert b"Reply-To: Sam\r\n  <staff" in refolded and verified(refolded, records(store)) == [True]


def test_a_message_without_one_from_is_not_signed(tmp_path):
    with pytest.raises(SigningError):
        Signer(KeyStore(tmp_path), clock).sign(b"To: a@b.example\r\nSubject: x\r\n\r\nbody\r\n")


def test_a_rotation_activated_in_another_process_signs_the_next_message(tmp_path):
    store = KeyStore(tmp_path)
    signer = Signer(store, clock)
    signer.sign(client_mail())
    KeyStore(tmp_path).rotate("demo.localhost", date(2026, 5, 15))
    KeyStore(tmp_path).activate("demo.localhost")
    signed = signer.sign(client_mail())
    assert tags_of(signed)["s"] == store.active("demo.localhost").rsa_selector == "ct20260515-rsa"
    assert verified(signed, records(store)) == [True]


def test_the_rsa_signature_is_the_one_dkimpy_itself_makes(tmp_path):
    # OpenSSL signs in place of dkimpy's own arithmetic: byte for byte the same header.
    generation = KeyStore(tmp_path).ensure("demo.localhost", date(2026, 5, 14))
    message = client_mail()

    def signed(rsa_key) -> bytes:
        return signing._Dkim(message, 1778750000, rsa_key).sign(
            generation.rsa_selector.encode(), b"demo.localhost", generation.rsa_pem, signature_algorithm=b"rsa-sha256",
            canonicalize=signing.CANONICALIZE, include_headers=signing.SIGNED_HEADERS)

    assert signed(generation.rsa_key) == signed(None)


def test_the_key_read_once_and_the_header_section_alone_sign_the_same(tmp_path, monkeypatch):
    # dkimpy's reading of the PEM is remembered per key, and the From is read
    # from the header section alone: the signature is byte for byte the one
    # made with dkimpy's own reading each time, over the whole message.
    signer = Signer(KeyStore(tmp_path), clock)
    message = client_mail()
    remembered = signer.sign(message)
    monkeypatch.setattr(signing.dkim, "parse_pem_private_key", signing._read_pem)
    monkeypatch.setattr(signing, "_header_section", lambda whole: whole)
    assert signer.sign(message) == remembered


@pytest.mark.parametrize("message", [
    b"From: a@one.example\r\nSubject: x\r\n\r\nFrom: b@two.example\r\n",
    b"From: a@one.example\nSubject: x\n\nFrom: b@two.example\n",  # LF: read whole
    b"Subject: x\r\n\r\nFrom: b@two.example\r\n",  # no From in the header section
    b"Subject: x\nFrom: a@one.example\r\n\r\nbody\r\n",  # a bare LF before the blank line
    b"Subject: x\r\nFrom: a@one.example\r\n",  # no body at all
    b"From: a@one.example\r\nFrom: c@three.example\r\n\r\nbody\r\n",  # two From
])
def test_the_from_domain_is_read_as_from_the_whole_message(message):
    def read(whole: bytes) -> str:
        try:
            return signing.from_domain(whole)
        except SigningError as exc:
            return f"refused: {exc}"

    section = read(message)
    original = signing._header_section
    try:
        signing._header_section = lambda whole: whole
        assert read(message) == section
    finally:
        signing._header_section = original
