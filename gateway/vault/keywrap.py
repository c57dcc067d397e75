"""Password key wrapping: the client's password (NFC, UTF-8) stretched with
Argon2id into a key-encryption key that wraps the request's data key with
AES-256-GCM. Parameters below m = 19 MiB, t = 2, p = 1 are refused; any
failure to unwrap is WrongPassword. In full: docs/vault.md, section 2."""

from __future__ import annotations

import base64
import binascii
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from gateway.vault.primitives import KEY_SIZE, NONCE_SIZE, TAG_SIZE, bytes_arg, int_arg

KDF_NAME = "argon2id"
KDF_SALT_SIZE = 16
MIN_MEMORY_KIB = 19456  # 19 MiB
MIN_ITERATIONS = 2
MIN_LANES = 1
# Ceilings guard against a corrupt or hostile parameter record making one
# unlock attempt exhaust the server's memory or CPU.
MAX_MEMORY_KIB = 1 << 20  # 1 GiB
MAX_ITERATIONS = 64
MAX_LANES = 16

WRAPPED_KEY_SIZE = NONCE_SIZE + KEY_SIZE + TAG_SIZE


class WrongPassword(Exception):
    """The password (or KEK) does not unwrap this key."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters stored with a password-wrapped key.

    Construction refuses anything below m = 19 MiB, t = 2, p = 1.
    """

    salt: bytes
    memory_kib: int = MIN_MEMORY_KIB
    iterations: int = MIN_ITERATIONS
    lanes: int = MIN_LANES

    def __post_init__(self) -> None:
        salt = bytes_arg(self.salt, "salt")
        if len(salt) < KDF_SALT_SIZE:
            raise ValueError(f"salt must be at least {KDF_SALT_SIZE} bytes")
        object.__setattr__(self, "salt", salt)
        memory = int_arg(self.memory_kib, "memory_kib")
        iterations = int_arg(self.iterations, "iterations")
        lanes = int_arg(self.lanes, "lanes")
        if memory < MIN_MEMORY_KIB:
            raise ValueError(f"memory_kib must be at least {MIN_MEMORY_KIB}")
        if iterations < MIN_ITERATIONS:
            raise ValueError(f"iterations must be at least {MIN_ITERATIONS}")
        if lanes < MIN_LANES:
            raise ValueError(f"lanes must be at least {MIN_LANES}")
        if memory > MAX_MEMORY_KIB:
            raise ValueError(f"memory_kib must be at most {MAX_MEMORY_KIB}")
        if iterations > MAX_ITERATIONS:
            raise ValueError(f"iterations must be at most {MAX_ITERATIONS}")
        if lanes > MAX_LANES:
            raise ValueError(f"lanes must be at most {MAX_LANES}")

    def to_json(self) -> dict:
        return {
            "kdf": KDF_NAME,
            "salt": base64.b64encode(self.salt).decode("ascii"),
            "memory_kib": self.memory_kib,
            "iterations": self.iterations,
            "lanes": self.lanes,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> KdfParams:
        """Inverse of :meth:`to_json`; raises ValueError on a bad record."""
        if not isinstance(d, Mapping):
            raise ValueError("KDF parameters must be a JSON object")
        if d.get("kdf", KDF_NAME) != KDF_NAME:
            raise ValueError("unsupported KDF")
        try:
            salt_b64 = d["salt"]
            memory, iterations, lanes = d["memory_kib"], d["iterations"], d["lanes"]
        except KeyError as exc:
            raise ValueError(f"KDF parameters lack {exc.args[0]!r}") from None
        if not isinstance(salt_b64, str):
            raise ValueError("KDF salt must be a base64 string")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("KDF salt is not valid base64") from None
        try:
            return cls(salt=salt, memory_kib=memory, iterations=iterations, lanes=lanes)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def new_kdf_params(memory_kib: int = MIN_MEMORY_KIB, iterations: int = MIN_ITERATIONS) -> KdfParams:
    """Parameters with a fresh random 16-byte salt (one lane)."""
    return KdfParams(
        salt=secrets.token_bytes(KDF_SALT_SIZE),
        memory_kib=memory_kib,
        iterations=iterations,
        lanes=MIN_LANES,
    )


def _password_bytes(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError(f"password must be str, not {type(password).__name__}")
    try:
        return unicodedata.normalize("NFC", password).encode("utf-8")
    except UnicodeEncodeError:
        # The default message would quote the offending character.
        raise ValueError("password is not valid Unicode text") from None


def derive_kek(password: str, params: KdfParams) -> bytes:
    """Argon2id(NFC(password) as UTF-8) -> 32-byte key-encryption key.

    Takes tens of milliseconds and ``params.memory_kib`` of memory.
    """
    if not isinstance(params, KdfParams):
        raise TypeError("params must be KdfParams")
    secret = _password_bytes(password)
    kdf = Argon2id(
        salt=params.salt,
        length=KEY_SIZE,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(secret)


def wrap_key(kek: bytes, data_key: bytes, aad: bytes) -> bytes:
    """Encrypt ``data_key`` under ``kek``: nonce(12) || AES-GCM ciphertext."""
    kek = bytes_arg(kek, "kek", KEY_SIZE)
    data_key = bytes_arg(data_key, "data_key", KEY_SIZE)
    aad = bytes_arg(aad, "aad")
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, aad)


def unwrap_key(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`wrap_key`; raises :class:`WrongPassword` on failure."""
    kek = bytes_arg(kek, "kek", KEY_SIZE)
    wrapped = bytes_arg(wrapped, "wrapped")
    aad = bytes_arg(aad, "aad")
    if len(wrapped) != WRAPPED_KEY_SIZE:
        raise WrongPassword("cannot unwrap the key")
    try:
        data_key = AESGCM(kek).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], aad)
    except InvalidTag:
        raise WrongPassword("cannot unwrap the key") from None
    return data_key


def wrap_with_password(password: str, data_key: bytes, params: KdfParams, aad: bytes) -> bytes:
    """Derive the KEK from ``password`` and wrap ``data_key`` with it.

    Refuses an empty password (password strength policy is the caller's).
    """
    if isinstance(password, str) and not password:
        raise ValueError("password must not be empty")
    return wrap_key(derive_kek(password, params), data_key, aad)


def unwrap_with_password(password: str, wrapped: bytes, params: KdfParams, aad: bytes) -> bytes:
    """Derive the KEK from ``password`` and unwrap; :class:`WrongPassword`
    if the password is wrong (or the blob or aad do not match)."""
    try:
        kek = derive_kek(password, params)
    except ValueError:
        # Not encodable: it cannot be the password the key was wrapped with.
        raise WrongPassword("cannot unwrap the key") from None
    return unwrap_key(kek, wrapped, aad)
