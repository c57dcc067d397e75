"""DKIM signing of outbound mail, checked with dkimpy's own verifier (the
records come from the key store; tests/test_deliverability.py asks a real DNS
server for them)."""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from types import SimpleNamespace

import dkim
import pytest
from dkim.canonicalization import Relaxed

from gateway.core.paths import TEMPLATES_DIR
from gateway.outbound.compose import Composer, to_bytes
from gateway.outbound.dkimkeys import KeyStore
from gateway.outbound import relaxed, signing
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


def confirmation() -> bytes:
    composer = Composer(TEMPLATES_DIR / "email", hostname="gw.test")
    return to_bytes(composer.confirmation(
        firm_name="Demo Accounting", firm_domain="demo.localhost", staff_email="staff@demo.localhost",
        client_email="jane@client.example", title="Invoice 1042", invoice="1042", amount="$1,250.00",
        hint="First pet", expires_on="2026-06-13", attachment_names=["invoice-1042.pdf"], generated_password=None,
        in_reply_to="<CAB9@mail.smith.example>", request_ref="R17", now=NOW))


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


def dkimpys(message: bytes, generation, algorithm: bytes, signed_at: int, monkeypatch) -> bytes:
    """The header dkimpy's own dkim.DKIM.sign makes (its arithmetic, its clock read as ``signed_at``)."""
    monkeypatch.setattr(dkim, "time", SimpleNamespace(time=lambda: signed_at))
    rsa = algorithm == b"rsa-sha256"
    return dkim.DKIM(message).sign(
        (generation.rsa_selector if rsa else generation.ed25519_selector).encode(), generation.domain.encode(),
        generation.rsa_pem if rsa else generation.ed25519_seed, signature_algorithm=algorithm,
        canonicalize=(b"relaxed", b"relaxed"), include_headers=signing.SIGNED_HEADERS)


def ours(message: bytes, generation, ed25519: bool, signed_at: int) -> bytes:
    return signing.signatures(*signing.read(message), generation, ed25519=ed25519, signed_at=signed_at)


def random_message(chance: random.Random) -> bytes:
    """Header fields with folds, tabs and odd spacing, and a body of every
    kind of white space and line end, in CRLF or LF."""
    def text(size: int) -> bytes:
        return b"".join(chance.choice([b"a", b"Z", b"=", b".", b" ", b"  ", b"\t", b" \t "]) for _ in range(size))

    def value() -> bytes:
        return b"".join(text(chance.randint(0, 8)) + chance.choice([b"", b"\r\n ", b"\r\n\t", b"\r\n  "])
                        for _ in range(chance.randint(1, 3))) + b"x"

    fields = [b"From: " + chance.choice([b"Demo <pay@demo.localhost>", b"pay@demo.localhost", b" <pay@demo.localhost> "])]
    fields += [chance.choice([b"Subject", b"subject", b"SUBJECT ", b"To", b"Date", b"Reply-To", b"X-Other",
                              b"Content-Type", b"Message-ID"]) + b":" + value() for _ in range(chance.randint(0, 7))]
    chance.shuffle(fields)
    lines = [text(chance.randint(0, 20)) for _ in range(chance.randint(0, 6))]
    body = b"".join(line + chance.choice([b"\r\n", b"\r\n", b"\n", b"\r"]) for line in lines)
    body += chance.choice([b"", b"\r\n", b"\r\n\r\n", b" \r\n\t\r\n", b"tail", b"tail ", b"\r\n \r\n\r\n"])
    ending = chance.choice([b"\r\n", b"\n"])
    message = ending.join(fields) + ending + chance.choice([ending + body, b""])
    return message


def test_the_signatures_are_the_ones_dkimpy_itself_makes(tmp_path, monkeypatch):
    # Byte for byte the header dkim.DKIM.sign writes, for a client mail, a
    # confirmation and random messages, RSA and Ed25519 (both deterministic).
    generation = KeyStore(tmp_path).ensure("demo.localhost", date(2026, 5, 14))
    chance = random.Random(18)
    messages = [client_mail(), confirmation()] + [random_message(chance) for _ in range(60)]
    for index, message in enumerate(messages):
        algorithm = b"ed25519-sha256" if index % 3 == 2 else b"rsa-sha256"
        try:
            expected = dkimpys(message, generation, algorithm, 1778750000 + index, monkeypatch)
        except dkim.MessageFormatError:  # "SUBJECT :" is not a header field: neither signs it
            with pytest.raises(SigningError):
                ours(message, generation, False, 1)
            continue
        made = ours(message, generation, algorithm == b"ed25519-sha256", 1778750000 + index)
        if algorithm == b"ed25519-sha256":
            made = split_signature(made + b"\r\n")[0]  # the Ed25519 header is the first of the two
        assert made == expected, message


def test_relaxed_body_canonicalization_is_dkimpys(monkeypatch):
    chance = random.Random(6376)
    pieces = [b"a", b"b", b" ", b"\t", b"\r\n", b"\r", b"\n", b"  ", b"\r\n\r\n", b" \r\n", b"\t\r\n"]
    bodies = [b"", b"\r\n", b"\r\n\r\n", b" ", b"\t", b" \r\n", b"x", b"x\r\r\n", b"\r\n\r\nx"]
    bodies += [b"".join(chance.choice(pieces) for _ in range(chance.randint(1, 30))) for _ in range(3000)]
    for body in bodies:
        assert relaxed.body(body) == Relaxed.canonicalize_body(body), body


def test_a_header_section_that_cannot_be_read_is_not_signed(tmp_path):
    # A permanent failure: the outbox tells the sender instead of retrying.
    with pytest.raises(SigningError, match="not a header field"):
        Signer(KeyStore(tmp_path), clock).sign(b"From: a@demo.localhost\r\nnot a field\r\n\r\nbody\r\n")


def test_rotations_in_the_same_second_are_each_seen(tmp_path):
    # The signer looks at the active pointer's inode, time and size, not its
    # text: each activation (a new file renamed in place) signs the next message.
    store = KeyStore(tmp_path)
    signer = Signer(store, clock)
    selectors = [tags_of(signer.sign(client_mail()))["s"]]
    for _ in range(2):
        store.rotate("demo.localhost", date(2026, 5, 15))
        store.activate("demo.localhost")
        selectors.append(tags_of(signer.sign(client_mail()))["s"])
    assert selectors == ["ct20260514-rsa", "ct20260515-rsa", "ct20260515n2-rsa"]


def reference_from_domain(message: bytes) -> str:
    """What the email package reads as the From domain of the whole message."""
    values = BytesHeaderParser(policy=compat32).parsebytes(message, headersonly=True).get_all("From") or []
    if len(values) != 1:
        return f"refused: a message to sign needs exactly one From header, not {len(values)}"
    return parseaddr(str(values[0]))[1].rpartition("@")[2]


@pytest.mark.parametrize("message", [
    b"From: a@one.example\r\nSubject: x\r\n\r\nFrom: b@two.example\r\n",
    b"From: a@one.example\nSubject: x\n\nFrom: b@two.example\n",  # LF
    b"Subject: x\r\n\r\nFrom: b@two.example\r\n",  # no From in the header section
    b"Subject: x\nFrom: a@one.example\r\n\r\nbody\r\n",  # a bare LF before the blank line
    b"Subject: x\r\nFrom: a@one.example\r\n",  # no body at all
    b"From: a@one.example\r\nFrom: c@three.example\r\n\r\nbody\r\n",  # two From
    b"FROM:\r\n  Anna <a@one.example>\r\n\r\n",  # folded, upper case
    b"from: \"x@evil.example\" <a@one.example>\r\n\r\n",  # an address in the display name
])
def test_the_from_domain_is_the_one_the_email_package_reads(message):
    try:
        read = signing.from_domain(signing.read(message)[0])
    except SigningError as exc:
        read = f"refused: {exc}"
    assert read == reference_from_domain(message)
