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

The header is made here rather than by dkimpy's sign(): the message read
and canonicalized by relaxed.py (dkimpy's regular expressions over the body
were a third of a signature), both signatures made by OpenSSL through
`cryptography`, and the header laid out by dkimpy's own fold(). It is byte
for byte the header dkim.DKIM.sign makes (tests/test_signing.py), and
receivers' dkimpy verifies it (tests/test_deliverability.py, through DNS).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from datetime import date
from email.utils import parseaddr

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from gateway.core.clock import Clock
from gateway.outbound import relaxed
from gateway.outbound.dkimkeys import Generation, KeyStore, checked_domain

SIGNED_HEADERS = (b"from", b"from", b"subject", b"subject", b"to", b"date", b"message-id", b"reply-to",
                  b"mime-version", b"content-type")
CANONICALIZE = (b"relaxed", b"relaxed")
_HEADER_NAME = b"DKIM-Signature"
# dkimpy writes b= as 60 zeros while it folds, so that b= starts a line of
# its own, then empties it to hash the header: the same here, so the
# header is laid out as dkimpy lays it out.
_PLACEHOLDER = b"0" * 60


class SigningError(Exception):
    """The message cannot be signed (no usable From domain, or a header
    section that cannot be read)."""


def from_domain(fields: list[tuple[bytes, bytes]]) -> str:
    """The domain of the (single) From address among the header ``fields``."""
    values = [value for name, value in fields if name.lower() == b"from"]
    if len(values) != 1:
        raise SigningError(f"a message to sign needs exactly one From header, not {len(values)}")
    return _domain_of(values[0])


@functools.lru_cache(maxsize=1024)
def _domain_of(value: bytes) -> str:
    """The domain of the address in a From header's ``value``. Remembered:
    the outbox's mail comes from a few addresses a firm, and the email
    package's reading of one was a sixth of a signature's work outside RSA."""
    address = parseaddr(value.decode("ascii", "surrogateescape").strip())[1]
    try:
        return checked_domain(address.rpartition("@")[2])
    except ValueError:
        raise SigningError(f"the From address {address!r} has no usable domain") from None


def _selected(fields: list[tuple[bytes, bytes]], names: tuple[bytes, ...]) -> list[tuple[bytes, bytes]]:
    """The fields each name in ``names`` (lower case) signs, as RFC 6376
    5.4.2 picks them: a name listed again takes the next one up; one listed
    more often than it occurs signs its absence (dkim.select_headers'
    order). A field's name is matched as relaxed.header_name writes it."""
    found: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for field in fields:
        found.setdefault(relaxed.header_name(field[0]), []).append(field)
    chosen = []
    for name in names:
        below = found.get(name)
        if below:
            chosen.append(below.pop())
    return chosen


def _signature_header(signed_fields: bytes, body_hash: bytes, *, algorithm: bytes, domain: bytes,
                      selector: bytes, signed_at: int, sign) -> bytes:
    """The DKIM-Signature header line(s) (CRLF), its b= made by ``sign``
    from the SHA-256 digest of ``signed_fields`` (the fields it signs,
    canonicalized, one after the other) and of itself; tags, their order
    and the folding as dkim.DKIM.sign writes them (dkimpy 1.1)."""
    tags = [(b"v", b"1"), (b"a", algorithm), (b"c", b"/".join(CANONICALIZE)), (b"d", domain), (b"i", b"@" + domain),
            (b"q", b"dns/txt"), (b"s", selector), (b"t", str(signed_at).encode()), (b"h", b" : ".join(SIGNED_HEADERS)),
            (b"bh", base64.b64encode(body_hash))]
    laid_out = dkim.fold(b"; ".join(b"=".join(tag) for tag in tags + [(b"b", _PLACEHOLDER)]),
                         namelen=len(_HEADER_NAME))
    unsigned = laid_out.removesuffix(_PLACEHOLDER)  # b= empty, as the verifier hashes it
    # The signature's own header last, without its CRLF (RFC 6376 3.7).
    name, value = relaxed.header(_HEADER_NAME, b" " + unsigned)
    signature = base64.b64encode(sign(hashlib.sha256(signed_fields + name + b":" + value.rstrip()).digest()))
    value = dkim.fold(b"; ".join(b"=".join(tag) for tag in tags + [(b"b", signature)]) + b"\r\n",
                      namelen=len(_HEADER_NAME))
    return _HEADER_NAME + b": " + value


def _rsa_signer(generation: Generation):
    key = generation.rsa_key
    return lambda digest: key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def read(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(the header fields, the body), as relaxed.split reads them."""
    try:
        return relaxed.split(message)
    except relaxed.UnreadableHeader as exc:
        raise SigningError(str(exc)) from None


def signatures(fields: list[tuple[bytes, bytes]], body: bytes, generation: Generation, *, ed25519: bool,
               signed_at: int) -> bytes:
    """The DKIM-Signature header lines (CRLF line endings) for the message
    read() read: relaxed/relaxed, RSA-SHA256 and, with ``ed25519``,
    Ed25519-SHA256 over the same message on top of it (neither signs the
    other). Both are made by OpenSSL through `cryptography`, which lets go
    of the GIL (dkimpy's own RSA arithmetic took some 10 ms a message
    holding it)."""
    # Only the fields signed are canonicalized: the same for both signatures.
    signed_fields = b"".join(name + b":" + value for name, value in
                             (relaxed.header(*field) for field in _selected(fields, SIGNED_HEADERS)))
    body_hash = hashlib.sha256(relaxed.body(body)).digest()
    domain = generation.domain.encode()
    out = _signature_header(signed_fields, body_hash, algorithm=b"rsa-sha256", domain=domain,
                            selector=generation.rsa_selector.encode(), signed_at=signed_at,
                            sign=_rsa_signer(generation))
    if ed25519:
        out = _signature_header(signed_fields, body_hash, algorithm=b"ed25519-sha256", domain=domain,
                                selector=generation.ed25519_selector.encode(), signed_at=signed_at,
                                sign=generation.ed25519_key.sign) + out
    return out


class Signer:
    """Signs with each domain's active keys, made on first need."""

    def __init__(self, keys: KeyStore, clock: Clock, *, ed25519: bool = False) -> None:
        self.keys = keys
        self.clock = clock
        self.ed25519 = ed25519
        self._loaded: dict[tuple[str, str], Generation] = {}
        # domain -> (its active pointer's stat, when read; the name it held)
        self._pointed: dict[str, tuple[tuple[int, int, int] | None, str]] = {}
        # domain -> its active pointer's path (a Path made for each message
        # was a tenth of a signature's work outside RSA)
        self._pointers: dict[str, str] = {}

    def generation(self, domain: str, today: date) -> Generation:
        # The active pointer is looked at every time, a stat (reading it
        # cost more than the rest of choosing the key): `activate` in
        # another process replaces the file (a rename), so its inode and
        # mtime change and the next message signs with the new keys.
        pointer = self._pointers.get(domain)
        if pointer is None:
            pointer = self._pointers[domain] = str(self.keys.folder(domain) / "active")
        stamp = _stamp(pointer)
        seen = self._pointed.get(domain)
        name = seen[1] if seen is not None and stamp is not None and seen[0] == stamp else self.keys.active_name(domain)
        cached = self._loaded.get((domain, name or ""))
        if cached is None:
            cached = self.keys.load(domain, name) if name else self.keys.ensure(domain, today)
            self._loaded[(domain, cached.name)] = cached
        self._pointed[domain] = (stamp, cached.name)
        return cached

    def sign(self, message: bytes) -> bytes:
        """``message`` with its DKIM-Signature header(s) on top. Synchronous
        and CPU-bound (an RSA signature, hashing the body): run it in a thread."""
        now = self.clock()
        fields, body = read(message)
        generation = self.generation(from_domain(fields), now.date())
        return signatures(fields, body, generation, ed25519=self.ed25519, signed_at=int(now.timestamp())) + message


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when the file is replaced or rewritten; None if there is none."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size
