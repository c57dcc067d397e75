"""The DKIM keys each sending domain signs with, kept in the data directory
beside the master key and as private as it (folders 0700, files 0600,
written whole or not at all).

    DATA_DIR/dkim/<domain>/<generation>.rsa.pem      2048-bit RSA, PKCS#1 PEM (as dkimpy reads it)
    DATA_DIR/dkim/<domain>/<generation>.ed25519.key  the Ed25519 seed, base64 (as dkimpy reads it)
    DATA_DIR/dkim/<domain>/active                    the generation that signs
    DATA_DIR/dkim/<domain>/next                      a generation made by rotate, not signing yet

A generation is a pair of keys with selectors ``<generation>-rsa`` and
``<generation>-ed``; its name is ``ct`` and the day it was made. A domain's
first generation is made when it is first needed (a firm added, a first
message signed), so signing never waits for an operator. Rotating is two
steps, because mail signed with a key that is not yet in DNS fails DKIM:
``rotate`` makes the next generation, the operator publishes its records,
``activate`` makes it the one that signs (the command checks DNS first).
The old generation's files stay, so its records can be published a while
longer for mail still in flight.

Two processes making a domain's first keys at once end with the same keys:
the first generation's name is the day's (``ct`` and the date), each file is
made under a temporary name and hard-linked into place, which fails if it
exists, and then all read what is there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from gateway.core.durable import create_private, fsync_dir, replace_private

RSA_BITS = 2048
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_GENERATION = re.compile(r"^ct[0-9]{8}(?:n[0-9]{1,3})?$")


class DkimKeyError(Exception):
    """A key file is missing, unreadable or not a key; the message names the path."""


@dataclass(frozen=True)
class Generation:
    """One generation of a domain's keys. The private parts never show in a repr."""

    domain: str
    name: str
    rsa_pem: bytes = field(repr=False)
    ed25519_seed: bytes = field(repr=False)  # base64 text, as dkimpy takes it

    @cached_property
    def rsa_key(self) -> rsa.RSAPrivateKey:
        """The RSA key, loaded once (what signs; never in a repr).

        Without cryptography's check of the key's numbers (the primality of
        p and q: some 40 ms of CPU, in each worker at its first mail): the
        file is our own, made by _make from a key OpenSSL generated and
        written whole, 0600. KeyStore.load signs with it and checks the
        signature instead (under a millisecond), which finds a damaged key
        that would sign wrongly."""
        return serialization.load_pem_private_key(self.rsa_pem, password=None, unsafe_skip_rsa_key_validation=True)

    @cached_property
    def ed25519_key(self) -> ed25519.Ed25519PrivateKey:
        """The Ed25519 key, from its seed, made once (never in a repr)."""
        return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(self.ed25519_seed))

    @property
    def rsa_selector(self) -> str:
        return f"{self.name}-rsa"

    @property
    def ed25519_selector(self) -> str:
        return f"{self.name}-ed"

    def rsa_record(self) -> str:
        """The TXT record at ``<rsa_selector>._domainkey.<domain>``."""
        der = self.rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()

    def ed25519_record(self) -> str:
        """The TXT record at ``<ed25519_selector>._domainkey.<domain>`` (RFC 8463)."""
        public = self.ed25519_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(public).decode()


def checked_domain(domain: str) -> str:
    """The domain in lower case; ValueError if it is not a plain host name
    (it names a folder: no '/', no '..')."""
    name = domain.strip().lower().rstrip(".")
    if not _DOMAIN.match(name):
        raise ValueError(f"not a domain name: {domain!r}")
    return name


class KeyStore:
    """The key files under ``DATA_DIR/dkim``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "dkim"

    def folder(self, domain: str) -> Path:
        return self.root / checked_domain(domain)

    # -- reading --------------------------------------------------------------

    def active(self, domain: str) -> Generation | None:
        """The generation that signs, or None before the domain has keys."""
        return self._pointed(domain, "active")

    def pending(self, domain: str) -> Generation | None:
        """The generation ``rotate`` made, until it is activated."""
        return self._pointed(domain, "next")

    def active_name(self, domain: str) -> str | None:
        return _read_pointer(self.folder(domain) / "active")

    def load(self, domain: str, name: str) -> Generation:
        folder = self.folder(domain)
        if not _GENERATION.match(name):
            raise DkimKeyError(f"{folder}: {name!r} is not a key generation")
        rsa_path, ed_path = folder / f"{name}.rsa.pem", folder / f"{name}.ed25519.key"
        try:
            rsa_pem, seed = rsa_path.read_bytes(), ed_path.read_bytes().strip()
        except OSError as exc:
            raise DkimKeyError(f"DKIM key {exc.filename}: {exc.strerror}") from None
        generation = Generation(checked_domain(domain), name, rsa_pem, seed)
        try:
            generation.rsa_record()
            generation.ed25519_record()
            _signs_true(generation.rsa_key)
        except Exception:  # never quote the file: it is a private key
            raise DkimKeyError(f"DKIM keys {rsa_path} / {ed_path} are not usable keys") from None
        return generation

    def _pointed(self, domain: str, pointer: str) -> Generation | None:
        name = _read_pointer(self.folder(domain) / pointer)
        return None if name is None else self.load(domain, name)

    # -- making ---------------------------------------------------------------

    def ensure(self, domain: str, today: date) -> Generation:
        """The active generation, made now if the domain has none."""
        found = self.active(domain)
        if found is not None:
            return found
        # The day's name, not the first free one: a process that comes while
        # another has made its key files but not yet its pointer would find
        # the name taken and make a second generation, left on disk unused.
        # With the same name, whatever files another process made are used.
        folder = self._prepare(domain)
        name = f"ct{today:%Y%m%d}"
        self._make(folder, name)
        _link_new(folder / "active", f"{name}\n".encode())  # loses to a process that got there first
        return self.active(domain)  # type: ignore[return-value]

    def rotate(self, domain: str, today: date) -> Generation:
        """A next generation to publish, or the one already waiting."""
        self.ensure(domain, today)
        waiting = self.pending(domain)
        if waiting is not None:
            return waiting
        folder = self._prepare(domain)
        name = _unused_name(folder, today)
        self._make(folder, name)
        replace_private(folder / "next", f"{name}\n".encode())
        return self.load(domain, name)

    def activate(self, domain: str) -> tuple[Generation, Generation]:
        """(old, new): the next generation now signs. DkimKeyError if none waits."""
        folder = self.folder(domain)
        old, new = self.active(domain), self.pending(domain)
        if old is None or new is None:
            raise DkimKeyError(f"{folder}: no new keys wait to be activated (rotate first)")
        replace_private(folder / "active", f"{new.name}\n".encode())
        (folder / "next").unlink()
        fsync_dir(folder)
        return old, new

    def _prepare(self, domain: str) -> Path:
        folder = self.folder(domain)
        for path in (self.root, folder):
            if not path.is_dir():
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(path, 0o700)  # mkdir's mode is cut by the umask
        return folder

    def _make(self, folder: Path, name: str) -> None:
        """Generation ``name``'s two key files, each unless it exists (made by
        another process at the same time, or before a crash: whole either
        way, as _link_new writes them)."""
        rsa_path, ed_path = folder / f"{name}.rsa.pem", folder / f"{name}.ed25519.key"
        if not rsa_path.exists():
            private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
            _link_new(rsa_path, private.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                                      serialization.NoEncryption()))
        if not ed_path.exists():
            seed = ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
            _link_new(ed_path, base64.b64encode(seed) + b"\n")


def _unused_name(folder: Path, today: date) -> str:
    """A name for a new generation made today that no file in ``folder`` has."""
    base = f"ct{today:%Y%m%d}"
    taken = {p.name.split(".")[0] for p in folder.iterdir()}
    return base if base not in taken else next(f"{base}n{i}" for i in range(2, 1000) if f"{base}n{i}" not in taken)


def _signs_true(key: rsa.RSAPrivateKey) -> None:
    """Raises InvalidSignature unless a signature made by ``key`` verifies
    with its public half."""
    digest = hashlib.sha256(b"clienttrack DKIM key check").digest()
    scheme, prehashed = padding.PKCS1v15(), Prehashed(hashes.SHA256())
    key.public_key().verify(key.sign(digest, scheme, prehashed), digest, scheme, prehashed)


def _read_pointer(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def _link_new(final: Path, data: bytes) -> None:
    """Make ``final`` with ``data`` unless it exists (then leave it)."""
    create_private(final, data)
    fsync_dir(final.parent)
