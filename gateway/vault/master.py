"""The server's master key: a 32-byte file (mode 0600, created atomically on
first start) that seals what the server must read without the client's
password (queued mail, outbound mail, session-held data keys): a version
byte, a random nonce, AES-256-GCM with the version in the associated data.
In full: docs/vault.md, section 3."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.core.durable import create_private, fsync_dir
from gateway.vault.primitives import KEY_SIZE, NONCE_SIZE, TAG_SIZE, TamperedError, bytes_arg

MASTER_FORMAT_V1 = b"\x01"
_MASTER_OVERHEAD = len(MASTER_FORMAT_V1) + NONCE_SIZE + TAG_SIZE


class MasterKeyError(Exception):
    """The master key file is unusable (wrong size, unsafe permissions...)."""


def _read_master_key(path: Path) -> bytes:
    # O_NONBLOCK: a FIFO planted at the path must not hang start-up.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MasterKeyError(f"master key {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise MasterKeyError(
                f"master key {path} has mode {mode:04o}; it must not be accessible "
                f"to group or others (chmod 600 {path})"
            )
        data = b""
        while len(data) <= KEY_SIZE:
            piece = os.read(fd, KEY_SIZE + 1 - len(data))
            if not piece:
                break
            data += piece
    finally:
        os.close(fd)
    if len(data) != KEY_SIZE:
        raise MasterKeyError(
            f"master key {path} must hold exactly {KEY_SIZE} bytes"
            + (" (it is longer)" if len(data) > KEY_SIZE else f" (it holds {len(data)})")
        )
    return data


def load_or_create_master_key(path: Path) -> bytes:
    """Read the 32-byte master key at ``path``, creating it on first use.

    Creation is atomic: the key is written to a private temporary file
    (``O_CREAT | O_EXCL``, mode 0600), flushed, then hard-linked into place,
    which fails if the key already exists. So the key file is never seen
    half-written, and two processes starting together end up with the same
    key. The parent directory is created (mode 0700) if missing.

    Raises :class:`MasterKeyError` if the file is not exactly 32 bytes, is
    not a regular file, or is accessible to group or others.
    """
    path = Path(path)
    try:
        return _read_master_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_SIZE)
    if not create_private(path, key):
        # Another process created it first: use theirs.
        return _read_master_key(path)
    # Best effort: the key is written and in use; a file system that cannot
    # sync a directory should not stop the gateway from starting.
    with contextlib.suppress(OSError):
        fsync_dir(path.parent)
    return key


def seal_with_master(master_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Seal with the master key: version(1) || nonce(12) || AES-GCM ct."""
    master_key = bytes_arg(master_key, "master_key", KEY_SIZE)
    plaintext = bytes_arg(plaintext, "plaintext")
    aad = bytes_arg(aad, "aad")
    nonce = secrets.token_bytes(NONCE_SIZE)
    return MASTER_FORMAT_V1 + nonce + AESGCM(master_key).encrypt(nonce, plaintext, MASTER_FORMAT_V1 + aad)


def open_with_master(master_key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`seal_with_master`; :class:`TamperedError` on failure."""
    master_key = bytes_arg(master_key, "master_key", KEY_SIZE)
    sealed = bytes_arg(sealed, "sealed")
    aad = bytes_arg(aad, "aad")
    if len(sealed) < _MASTER_OVERHEAD:
        raise TamperedError("sealed data is too short")
    version = sealed[:1]
    if version != MASTER_FORMAT_V1:
        raise TamperedError(f"unknown sealed-data format version {version[0]}")
    nonce = sealed[1 : 1 + NONCE_SIZE]
    try:
        return AESGCM(master_key).decrypt(nonce, sealed[1 + NONCE_SIZE :], version + aad)
    except InvalidTag:
        raise TamperedError("sealed data failed authentication") from None


def subkey(master_key: bytes, purpose: bytes) -> bytes:
    """A key of the master key's for one purpose (HKDF-SHA256, the purpose
    as its info): what it seals opens only under the same purpose, so a
    sealed object moved to another purpose's place does not open."""
    master_key = bytes_arg(master_key, "master_key", KEY_SIZE)
    purpose = bytes_arg(purpose, "purpose")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=b"clienttrack master subkey v1:" + purpose
                ).derive(master_key)
