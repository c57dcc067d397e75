"""Encryption of client content: sealed files, password-wrapped keys, the
server master key and link tokens.

Everything here is synchronous. AES-GCM and Argon2id release the GIL, so
async callers should run these functions in a thread executor
(``loop.run_in_executor`` / ``asyncio.to_thread``). No secret (password or
key) is ever logged or placed in an exception message.

Key hierarchy
=============

::

    password --Argon2id(KdfParams)--> KEK --AES-GCM wrap--> data key (per request)
                                                              |
                             HKDF-SHA256(salt=file_salt) -----+--> file subkey (per file)
                                                                      |
                                                   AES-256-GCM STREAM chunks

    master key (file on the server) --AES-GCM--> queued raw mail, outbound
                                                 mail, session-held data keys

1. Content sealing (STREAM)
---------------------------

Each request has a random 256-bit *data key* (:func:`new_data_key`). Every
file (an attachment or the message body) gets its own random 16-byte
``file_salt`` (:func:`new_file_salt`) and a subkey::

    subkey = HKDF-SHA256(ikm=data_key, salt=file_salt,
                         info=b"clienttrack file v1", length=32)

The plaintext is cut into chunks of ``CHUNK_SIZE`` (64 KiB) bytes. Every
chunk but the last is exactly ``CHUNK_SIZE`` bytes; the last holds the rest,
between 0 and ``CHUNK_SIZE`` bytes (a file whose size is a multiple of
``CHUNK_SIZE`` does *not* get an extra empty chunk; an empty file is a
single empty last chunk). So a file of ``n`` bytes has
``max(1, ceil(n / CHUNK_SIZE))`` chunks (:func:`chunk_count`). Chunk ``i`` is
sealed as::

    nonce_i = i.to_bytes(11, "big") + (b"\\x01" if last else b"\\x00")
    chunk_i = AES-256-GCM(subkey).encrypt(nonce_i, plaintext_i, aad=b"")
            = ciphertext_i || tag_i (16 bytes)

This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizar 2015):
the position is in the nonce, so reordering fails; the last flag is in the
nonce, so dropping trailing chunks (or appending chunks) fails; the subkey
depends on the file salt, so a chunk moved from another file, even one
under the same data key, fails. Nonces never repeat because every
``(data_key, file_salt)`` pair, and so every subkey, is used for exactly one
file. **Never seal two different plaintexts with the same data key and file
salt**: always draw a fresh salt for a new or changed file.

A sealed file is stored as its ``file_salt``, the list of chunks and the
chunk count; none of these is secret.

Decryption is streaming: :class:`ChunkOpener` and :func:`open_chunks` hand out
each chunk's plaintext once that chunk is authenticated, but whether the file
is *complete* is only known after the last chunk. A consumer that streams to
the browser must abort the response (not finish it cleanly) on
:class:`TamperedError`.

2. Password key wrapping
------------------------

The client's password is stretched with Argon2id (RFC 9106) into a 32-byte
key-encryption key (KEK). The password is normalized to Unicode NFC and
encoded as UTF-8 first, so the same password typed on a Mac, phone or PC
(which may send composed or decomposed accents) gives the same key. The
parameters live in :class:`KdfParams` (stored as JSON next to the wrapped key,
``{"kdf": "argon2id", "salt": <base64>, "memory_kib", "iterations",
"lanes"}``); the floor is m = 19 MiB, t = 2, p = 1 (the OWASP minimum) and
anything weaker is refused with ``ValueError``. The wrapped data key is::

    wrapped = nonce (12 random bytes) || AES-256-GCM(KEK).encrypt(nonce, data_key, aad)

60 bytes in all. ``aad`` should name what the key belongs to (e.g. the
request id) so that a wrapped key cannot be moved to another request. Any
failure to unwrap raises :class:`WrongPassword` (AES-GCM cannot tell a wrong
password from a damaged blob). Unwrapping can be tried offline by whoever
holds the blob, and each online attempt costs ~20 MiB and tens of
milliseconds of CPU, so callers must rate-limit and bound concurrent attempts.

3. Master key
-------------

The server keeps one 32-byte master key in a file (mode 0600, created on
first start by :func:`load_or_create_master_key`). It seals data at rest that
the server must read without the client's password: queued raw mail,
outbound mail, and data keys held for an unlocked session. Format::

    sealed = b"\\x01" (format version) || nonce (12 random bytes)
             || AES-256-GCM(master_key).encrypt(nonce, plaintext, b"\\x01" + aad)

The version byte is also authenticated. Callers must use a distinct ``aad``
per purpose and object (e.g. ``b"raw-mail:" + message_id``) so a sealed blob
cannot be replayed as another kind of object. With random 96-bit nonces one
key is good for about 2**32 messages, far beyond this product's volume. One
message is encrypted in one piece (fine up to ~50 MB).

4. Link tokens
--------------

Links carry a 256-bit random token (43 URL-safe base64 characters); the
database stores only its SHA-256 hex digest (:func:`token_hash`), so a
database leak does not reveal working links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "CHUNK_SIZE",
    "TAG_SIZE",
    "KEY_SIZE",
    "FILE_SALT_SIZE",
    "TamperedError",
    "WrongPassword",
    "MasterKeyError",
    "new_data_key",
    "new_file_salt",
    "chunk_count",
    "seal_chunks",
    "ChunkSealer",
    "ChunkOpener",
    "open_chunks",
    "KdfParams",
    "new_kdf_params",
    "derive_kek",
    "wrap_key",
    "unwrap_key",
    "wrap_with_password",
    "unwrap_with_password",
    "load_or_create_master_key",
    "seal_with_master",
    "open_with_master",
    "new_token",
    "token_hash",
]

CHUNK_SIZE = 65536
TAG_SIZE = 16
KEY_SIZE = 32
FILE_SALT_SIZE = 16
NONCE_SIZE = 12

FILE_INFO = b"clienttrack file v1"
_COUNTER_SIZE = 11
_MAX_CHUNKS = 1 << (8 * _COUNTER_SIZE)
_FLAG_MORE = b"\x00"
_FLAG_LAST = b"\x01"

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

MASTER_FORMAT_V1 = b"\x01"
_MASTER_OVERHEAD = len(MASTER_FORMAT_V1) + NONCE_SIZE + TAG_SIZE


class TamperedError(Exception):
    """Sealed data failed authentication: it was altered, truncated,
    reordered, mixed with other data, or the key is wrong."""


class WrongPassword(Exception):
    """The password (or KEK) does not unwrap this key."""


class MasterKeyError(Exception):
    """The master key file is unusable (wrong size, unsafe permissions...)."""


# ---------------------------------------------------------------- helpers


def _bytes_arg(value: Any, name: str, size: int | None = None) -> bytes:
    """Return ``value`` as bytes, checking type and length.

    The message names the argument and sizes only, never the content.
    """
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    value = bytes(value)
    if size is not None and len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return value


def _int_arg(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


# ------------------------------------------------------- 1. content sealing


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one request."""
    return secrets.token_bytes(KEY_SIZE)


def new_file_salt() -> bytes:
    """A fresh random 16-byte salt for one file; never reuse it."""
    return secrets.token_bytes(FILE_SALT_SIZE)


def chunk_count(size: int) -> int:
    """Number of chunks a plaintext of ``size`` bytes is sealed into."""
    size = _int_arg(size, "size")
    if size < 0:
        raise ValueError("size must not be negative")
    return max(1, -(-size // CHUNK_SIZE))


def _file_aead(data_key: bytes, file_salt: bytes) -> AESGCM:
    data_key = _bytes_arg(data_key, "data_key", KEY_SIZE)
    file_salt = _bytes_arg(file_salt, "file_salt", FILE_SALT_SIZE)
    subkey = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=file_salt,
        info=FILE_INFO,
    ).derive(data_key)
    return AESGCM(subkey)


def _chunk_nonce(index: int, last: bool) -> bytes:
    if not 0 <= index < _MAX_CHUNKS:
        raise OverflowError("chunk counter out of range")
    return index.to_bytes(_COUNTER_SIZE, "big") + (_FLAG_LAST if last else _FLAG_MORE)


def seal_chunks(data_key: bytes, file_salt: bytes, plaintext: bytes) -> list[bytes]:
    """Seal an in-memory plaintext; returns the list of sealed chunks.

    Produces exactly the same chunks as feeding the same bytes to a
    :class:`ChunkSealer` with the same key and salt.
    """
    aead = _file_aead(data_key, file_salt)
    view = memoryview(_bytes_arg(plaintext, "plaintext"))
    count = chunk_count(len(view))
    out = []
    for i in range(count):
        piece = view[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE]
        out.append(aead.encrypt(_chunk_nonce(i, i == count - 1), piece, None))
    return out


class ChunkSealer:
    """Incremental sealer for data that arrives in pieces.

    ::

        sealer = ChunkSealer(data_key, file_salt)
        for piece in source:
            for chunk in sealer.feed(piece):
                store(chunk)
        store(sealer.finish())        # finish() returns ONE chunk (bytes)

    At most ``CHUNK_SIZE`` bytes of plaintext are buffered: a full chunk is
    held back until more data arrives because it might turn out to be the
    last one (which carries the last flag).
    """

    def __init__(self, data_key: bytes, file_salt: bytes) -> None:
        self._aead = _file_aead(data_key, file_salt)
        self._buf = bytearray()
        self._index = 0
        self._finished = False

    @property
    def chunk_count(self) -> int:
        """Chunks produced so far (the final count once finished)."""
        return self._index

    @property
    def finished(self) -> bool:
        return self._finished

    def _seal(self, piece: bytes | bytearray | memoryview, last: bool) -> bytes:
        chunk = self._aead.encrypt(_chunk_nonce(self._index, last), piece, None)
        self._index += 1
        return chunk

    def feed(self, data: bytes) -> list[bytes]:
        """Add plaintext; returns the chunks completed by it (maybe none)."""
        if self._finished:
            raise RuntimeError("ChunkSealer is already finished")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        view = memoryview(data).cast("B")
        out: list[bytes] = []
        if not view:
            return out
        if self._buf:
            take = CHUNK_SIZE - len(self._buf)
            self._buf += view[:take]
            view = view[take:]
            if not view:
                return out  # the buffer may hold the last chunk; keep it
            out.append(self._seal(self._buf, last=False))
            self._buf.clear()
        while len(view) > CHUNK_SIZE:
            out.append(self._seal(view[:CHUNK_SIZE], last=False))
            view = view[CHUNK_SIZE:]
        self._buf += view
        return out

    def finish(self) -> bytes:
        """Seal and return the last chunk (a single ``bytes``)."""
        if self._finished:
            raise RuntimeError("ChunkSealer is already finished")
        self._finished = True
        chunk = self._seal(self._buf, last=True)
        self._buf.clear()
        return chunk


class ChunkOpener:
    """Opens the chunks of one file, in order, knowing the chunk count.

    ``open(index, ciphertext)`` must be called with index 0, 1, ...,
    ``chunk_count - 1``; the chunk at ``chunk_count - 1`` must carry the
    last flag and no other may. Any deviation raises :class:`TamperedError`
    (and the opener stays at the same position). ``done`` becomes true once
    the last chunk has been opened; only then is the file known complete.
    """

    def __init__(self, data_key: bytes, file_salt: bytes, chunk_count: int) -> None:
        chunk_count = _int_arg(chunk_count, "chunk_count")
        if not 1 <= chunk_count <= _MAX_CHUNKS:
            raise ValueError("chunk_count out of range (a file has at least 1 chunk)")
        self._aead = _file_aead(data_key, file_salt)
        self._count = chunk_count
        self._next = 0

    @property
    def chunk_count(self) -> int:
        return self._count

    @property
    def next_index(self) -> int:
        return self._next

    @property
    def done(self) -> bool:
        return self._next == self._count

    def open(self, index: int, ciphertext: bytes) -> bytes:
        index = _int_arg(index, "index")
        if self._next >= self._count:
            raise TamperedError("chunk after the last chunk")
        if index != self._next:
            raise TamperedError(f"chunk {index} out of sequence (expected {self._next})")
        ciphertext = _bytes_arg(ciphertext, "ciphertext")
        plaintext = _open_chunk(self._aead, index, index == self._count - 1, ciphertext)
        self._next += 1
        return plaintext


def _open_chunk(aead: AESGCM, index: int, last: bool, ciphertext: bytes) -> bytes:
    size = len(ciphertext)
    if last:
        if not TAG_SIZE <= size <= CHUNK_SIZE + TAG_SIZE:
            raise TamperedError(f"chunk {index} has an invalid size")
    elif size != CHUNK_SIZE + TAG_SIZE:
        raise TamperedError(f"chunk {index} has an invalid size")
    try:
        return aead.decrypt(_chunk_nonce(index, last), ciphertext, None)
    except InvalidTag:
        raise TamperedError(f"chunk {index} failed authentication") from None


def open_chunks(data_key: bytes, file_salt: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decrypt a sequence of chunks, yielding plaintext chunk by chunk.

    The final chunk must carry the last flag, so a truncated (or extended)
    sequence raises :class:`TamperedError`, but only when the iterator
    reaches the end: plaintext of earlier chunks has already been yielded by
    then. Keys are checked immediately, not on first iteration.
    """
    aead = _file_aead(data_key, file_salt)
    return _open_chunks(aead, iter(chunks))


def _open_chunks(aead: AESGCM, it: Iterator[bytes]) -> Iterator[bytes]:
    sentinel = object()
    current = next(it, sentinel)
    if current is sentinel:
        raise TamperedError("no chunks")
    index = 0
    while True:
        following = next(it, sentinel)
        last = following is sentinel
        if index >= _MAX_CHUNKS:
            raise TamperedError("too many chunks")
        yield _open_chunk(aead, index, last, _bytes_arg(current, "chunk"))
        if last:
            return
        current = following
        index += 1


# ---------------------------------------------------------- 2. key wrapping


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
        salt = _bytes_arg(self.salt, "salt")
        if len(salt) < KDF_SALT_SIZE:
            raise ValueError(f"salt must be at least {KDF_SALT_SIZE} bytes")
        object.__setattr__(self, "salt", salt)
        memory = _int_arg(self.memory_kib, "memory_kib")
        iterations = _int_arg(self.iterations, "iterations")
        lanes = _int_arg(self.lanes, "lanes")
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
    kek = _bytes_arg(kek, "kek", KEY_SIZE)
    data_key = _bytes_arg(data_key, "data_key", KEY_SIZE)
    aad = _bytes_arg(aad, "aad")
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, aad)


def unwrap_key(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`wrap_key`; raises :class:`WrongPassword` on failure."""
    kek = _bytes_arg(kek, "kek", KEY_SIZE)
    wrapped = _bytes_arg(wrapped, "wrapped")
    aad = _bytes_arg(aad, "aad")
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


# ------------------------------------------------------------ 3. master key


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


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(key)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            # Another process created it first: use theirs.
            return _read_master_key(path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    _fsync_dir(path.parent)
    return key


def seal_with_master(master_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Seal with the master key: version(1) || nonce(12) || AES-GCM ct."""
    master_key = _bytes_arg(master_key, "master_key", KEY_SIZE)
    plaintext = _bytes_arg(plaintext, "plaintext")
    aad = _bytes_arg(aad, "aad")
    nonce = secrets.token_bytes(NONCE_SIZE)
    return MASTER_FORMAT_V1 + nonce + AESGCM(master_key).encrypt(nonce, plaintext, MASTER_FORMAT_V1 + aad)


def open_with_master(master_key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`seal_with_master`; :class:`TamperedError` on failure."""
    master_key = _bytes_arg(master_key, "master_key", KEY_SIZE)
    sealed = _bytes_arg(sealed, "sealed")
    aad = _bytes_arg(aad, "aad")
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


# ----------------------------------------------------------- 4. link tokens


def new_token() -> str:
    """A fresh 256-bit link token: 43 URL-safe base64 characters, no padding."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex digest of a token: what the database stores."""
    if not isinstance(token, str):
        raise TypeError(f"token must be str, not {type(token).__name__}")
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
