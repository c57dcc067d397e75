"""DKIM signing of every outbound message, as it leaves the outbox.

The signing domain is the domain of the message's From (a firm's gateway
domain), so the signature aligns with From for DMARC. RSA-SHA256 with the
domain's 2048-bit key always; Ed25519-SHA256 (RFC 8463) as a second
signature when the operator turns it on (CLIENTTRACK_DKIM_ED25519): a
receiver that knows Ed25519 checks that one, and every other still checks
the RSA one. relaxed/relaxed canonicalization: a relay that refolds a
header or trims trailing white space does not break the signature.

Signed headers: From, To, Subject, Date, Message-ID, Reply-To, MIME-Version
and Content-Type; From and Subject are listed once more than they occur
("oversigned"), so a second From or Subject added on the way makes the
signature fail instead of showing the reader a forged one. A header listed
that the message lacks (Reply-To on a mail to staff) is signed as absent:
it cannot be added either.

Signed when delivered, not when queued: the key that signs is the one
active then, and the signature's t= is the moment it left (from the clock
passed in, not the library's own).
"""

from __future__ import annotations

import base64
import functools
from datetime import date
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from gateway.core.clock import Clock
from gateway.outbound.dkimkeys import Generation, KeyStore, checked_domain

SIGNED_HEADERS = (b"from", b"from", b"subject", b"subject", b"to", b"date", b"message-id", b"reply-to",
                  b"mime-version", b"content-type")
CANONICALIZE = (b"relaxed", b"relaxed")


# dkimpy's sign() reads the PEM key it is given into numbers (in pure
# Python: ASN.1, about a millisecond a message) before it signs, even
# though _Dkim signs RSA with the `cryptography` key instead and never
# uses what it read. The same PEM always reads the same: remember it per
# key (a failure is not remembered, and raises as before).
_read_pem = dkim.parse_pem_private_key


@functools.lru_cache(maxsize=256)
def _pem_read_once(pem: bytes):
    return _read_pem(pem)


dkim.parse_pem_private_key = _pem_read_once


class SigningError(Exception):
    """The message cannot be signed (no usable From domain)."""


class _Dkim(dkim.DKIM):
    """dkimpy's signer with two of its steps our own: t= from our clock (it
    reads time.time() itself), and the RSA signature made by OpenSSL through
    `cryptography` instead of dkimpy's pure-Python arithmetic, which took
    some 10 ms a message holding the GIL (the event loop, SMTP admission
    included, waited that long) and is about 1 ms here, GIL released.
    Everything else is dkimpy's own: the canonicalization, the headers
    hashed, the folding (the steps of dkim.DKIM.gen_header, dkimpy 1.1)."""

    def __init__(self, message: bytes, signed_at: int, rsa_key: rsa.RSAPrivateKey | None = None) -> None:
        super().__init__(message)
        self._signed_at = str(signed_at).encode()
        self._rsa_key = rsa_key

    def gen_header(self, fields, include_headers, canon_policy, header_name, pk, standardize=False):
        fields = [(b"t", self._signed_at) if name == b"t" else (name, value) for name, value in fields]
        if self._rsa_key is None or self.signature_algorithm != b"rsa-sha256" or standardize:
            return super().gen_header(fields, include_headers, canon_policy, header_name, pk, standardize)
        header_value = dkim.fold(b"; ".join(b"=".join(x) for x in fields), namelen=len(header_name),
                                 linesep=b"\r\n")
        header_value = dkim.RE_BTAG.sub(b"\\1", header_value)  # b= empty while hashing
        hashed = dkim.HashThrough(self.hasher(), self.debug_content)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(hashed, canon_policy, headers, include_headers,
                                                (header_name, b" " + header_value), dict(fields))
        signature = self._rsa_key.sign(hashed.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        fields = [(b"b", base64.b64encode(signature)) if name == b"b" else (name, value) for name, value in fields]
        return dkim.fold(b"; ".join(b"=".join(x) for x in fields) + self.linesep, namelen=len(header_name),
                         linesep=self.linesep)


def from_domain(message: bytes) -> str:
    """The domain of the message's (single) From address."""
    values = BytesHeaderParser(policy=compat32).parsebytes(_header_section(message), headersonly=True)
    values = values.get_all("From") or []
    if len(values) != 1:
        raise SigningError(f"a message to sign needs exactly one From header, not {len(values)}")
    address = parseaddr(str(values[0]))[1]
    try:
        return checked_domain(address.rpartition("@")[2])
    except ValueError:
        raise SigningError(f"the From address {address!r} has no usable domain") from None


def _header_section(message: bytes) -> bytes:
    """The message up to and including the empty line that ends its header
    section, when every line before it ends in CRLF (a message the outbox
    sends, written to the wire); else the whole message. The parser reads
    the same headers from either, without going through the body."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message
    head = message[:end]
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        return message
    return message[:end + 4]


def signatures(message: bytes, generation: Generation, *, ed25519: bool, signed_at: int) -> bytes:
    """The DKIM-Signature header lines for ``message`` (CRLF line endings)."""
    domain = generation.domain.encode()
    out = _Dkim(message, signed_at, generation.rsa_key).sign(generation.rsa_selector.encode(), domain, generation.rsa_pem,
                                         signature_algorithm=b"rsa-sha256", canonicalize=CANONICALIZE,
                                         include_headers=SIGNED_HEADERS)
    if ed25519:
        # Over the same message, without the RSA signature: neither signs the other.
        out = _Dkim(message, signed_at).sign(generation.ed25519_selector.encode(), domain, generation.ed25519_seed,
                                             signature_algorithm=b"ed25519-sha256", canonicalize=CANONICALIZE,
                                             include_headers=SIGNED_HEADERS) + out
    return out


class Signer:
    """Signs with each domain's active keys, made on first need."""

    def __init__(self, keys: KeyStore, clock: Clock, *, ed25519: bool = False) -> None:
        self.keys = keys
        self.clock = clock
        self.ed25519 = ed25519
        self._loaded: dict[tuple[str, str], Generation] = {}

    def generation(self, domain: str, today: date) -> Generation:
        # The active pointer is read every time (a few bytes): `activate` in
        # another process takes effect with the next message, no restart.
        name = self.keys.active_name(domain)
        cached = self._loaded.get((domain, name or ""))
        if cached is not None:
            return cached
        generation = self.keys.load(domain, name) if name else self.keys.ensure(domain, today)
        self._loaded[(domain, generation.name)] = generation
        return generation

    def sign(self, message: bytes) -> bytes:
        """``message`` with its DKIM-Signature header(s) on top. Synchronous
        and CPU-bound (an RSA signature, hashing the body): run it in a thread."""
        now = self.clock()
        generation = self.generation(from_domain(message), now.date())
        return signatures(message, generation, ed25519=self.ed25519, signed_at=int(now.timestamp())) + message
