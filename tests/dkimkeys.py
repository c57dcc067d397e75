"""DKIM keys and signers for the tests, in the shapes real senders use.

Keys are made here (RSA, as dkimpy signs with PKCS#1 PEM) and published on
the loopback DNS server (tests/dnsserver.py). The signer is dkimpy's own,
with the two tags it cannot set: the signing time t= (a replayed message
was signed days ago) and an expiry x=.
"""

from __future__ import annotations

import base64
import email.utils
import time

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# What Gmail signs (its h= on an ordinary reply), and what Microsoft 365
# signs (it never signs To or Cc), each with relaxed/relaxed.
GMAIL_HEADERS = ("mime-version", "references", "in-reply-to", "from", "date", "message-id", "subject", "to", "cc")
M365_HEADERS = ("from", "date", "subject", "message-id", "content-type", "mime-version")


class Key:
    """An RSA key pair: PKCS#1 PEM to sign with, and its DNS TXT record."""

    def __init__(self, bits: int = 2048) -> None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


class _Signer(dkim.DKIM):
    """dkimpy's signer, with t= and x= chosen by the caller."""

    def __init__(self, raw: bytes, signed_at: int | None, expires: int | None) -> None:
        super().__init__(raw)
        self._signed_at = signed_at
        self._expires = expires

    def gen_header(self, fields, include_headers, canon_policy, header_name, pk, standardize=False):
        fields = list(fields)
        if self._signed_at is not None:
            fields = [(b"t", str(self._signed_at).encode()) if name == b"t" else (name, value)
                      for name, value in fields]
        if self._expires is not None:
            at = next(i for i, (name, _value) in enumerate(fields) if name == b"bh")
            fields.insert(at, (b"x", str(self._expires).encode()))
        return super().gen_header(fields, include_headers, canon_policy, header_name, pk, standardize)


def sign(raw: bytes, key: Key, domain: str, *, selector: str = "sel", headers: tuple[str, ...] = GMAIL_HEADERS,
         signed_at: int | None = None, expires: int | None = None) -> bytes:
    """``raw`` with a DKIM-Signature on top (relaxed/relaxed, rsa-sha256)."""
    signer = _Signer(raw, signed_at, expires)
    header = signer.sign(selector.encode(), domain.encode(), key.pem,
                         canonicalize=(b"relaxed", b"relaxed"),
                         include_headers=[h.encode() for h in headers])
    return header + raw


def mail(*, sender: str, to: str, subject: str, body: str = "Hello,\r\nsee you then.\r\n",
         date: float | None = None, message_id: str | None = None, extra: tuple[str, ...] = ()) -> bytes:
    """A plain text message as a mail client writes it (CRLF line ends)."""
    domain = sender.rpartition("@")[2]
    lines = [
        f"From: Boss <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate(time.time() if date is None else date)}",
        f"Message-ID: {message_id or email.utils.make_msgid(domain=domain)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
