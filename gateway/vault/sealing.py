"""Content sealing: a file cut into 64 KiB chunks, each sealed with
AES-256-GCM under a per-file HKDF subkey of the request's data key, the
chunk's position and a last-chunk flag in the nonce (STREAM), so
reordering, truncation and mixing files fail. Streaming both ways. The
construction in full: docs/vault.md, section 1."""

from __future__ import annotations

import secrets
from typing import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.vault.primitives import KEY_SIZE, TAG_SIZE, TamperedError, bytes_arg, int_arg

CHUNK_SIZE = 65536
FILE_SALT_SIZE = 16

FILE_INFO = b"clienttrack file v1"
_COUNTER_SIZE = 11
_MAX_CHUNKS = 1 << (8 * _COUNTER_SIZE)
_FLAG_MORE = b"\x00"
_FLAG_LAST = b"\x01"


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one request."""
    return secrets.token_bytes(KEY_SIZE)


def new_file_salt() -> bytes:
    """A fresh random 16-byte salt for one file; never reuse it."""
    return secrets.token_bytes(FILE_SALT_SIZE)


def chunk_count(size: int) -> int:
    """Number of chunks a plaintext of ``size`` bytes is sealed into."""
    size = int_arg(size, "size")
    if size < 0:
        raise ValueError("size must not be negative")
    return max(1, -(-size // CHUNK_SIZE))


def _file_aead(data_key: bytes, file_salt: bytes) -> AESGCM:
    data_key = bytes_arg(data_key, "data_key", KEY_SIZE)
    file_salt = bytes_arg(file_salt, "file_salt", FILE_SALT_SIZE)
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
    view = memoryview(bytes_arg(plaintext, "plaintext"))
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
        chunk_count = int_arg(chunk_count, "chunk_count")
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
        index = int_arg(index, "index")
        if self._next >= self._count:
            raise TamperedError("chunk after the last chunk")
        if index != self._next:
            raise TamperedError(f"chunk {index} out of sequence (expected {self._next})")
        ciphertext = bytes_arg(ciphertext, "ciphertext")
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
        yield _open_chunk(aead, index, last, bytes_arg(current, "chunk"))
        if last:
            return
        current = following
        index += 1
