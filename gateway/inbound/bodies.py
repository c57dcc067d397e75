"""A large message's body in the blob store, sealed in chunks as it
arrives: admission writes it during DATA (the message is never held whole),
the runner reads it back a chunk at a time, and it is deleted once the
message is done.

Sealed like a request's files (vault/sealing.py: 64 KiB chunks, AES-256-GCM,
the chunk's place and a last-chunk flag in the nonce), under a key of the
master key's for this queue id (vault.subkey), so a body moved under
another queue row does not open. The row keeps the file salt and the
object's name; the header section is the sealed message (models.InboundRaw)."""

from __future__ import annotations

from typing import AsyncIterator

from gateway import vault
from gateway.blobs import BlobStore
from gateway.vault.sealed import sealed_chunks


def blob_name(queue_id: str) -> str:
    return f"inbound/{queue_id.lower()}"


def _key(master_key: bytes, queue_id: str) -> bytes:
    return vault.subkey(master_key, b"inbound body:" + queue_id.encode())


class BodyWriter:
    """The body of the message with this queue id, sealed and written as it
    comes; nothing is under its name until close()."""

    def __init__(self, store: BlobStore, master_key: bytes, queue_id: str) -> None:
        self.queue_id = queue_id
        self.name = blob_name(queue_id)
        self.salt = vault.new_file_salt()
        self.size = 0
        # Set by whoever commits a row that names the body: from then on it
        # is the queue's to delete, not the writer's.
        self.taken = False
        self._store = store
        self._sealer = vault.ChunkSealer(_key(master_key, queue_id), self.salt)
        self._writer = store.writer(self.name)
        self._closed = False

    async def write(self, piece: bytes) -> None:
        self.size += len(piece)
        chunks = self._sealer.feed(piece)
        if chunks:
            await self._writer.write(chunks)

    async def close(self) -> None:
        await self._writer.write([self._sealer.finish()])
        await self._writer.close()
        self._closed = True

    async def abort(self) -> None:
        """Nothing of it stays: a body stored for good but never committed
        (the message was refused) is deleted."""
        if self._closed:
            await self._store.delete(self.name)
        else:
            await self._writer.abort()


async def read(store: BlobStore, master_key: bytes, queue_id: str, salt: bytes, size: int) -> AsyncIterator[bytes]:
    """The body's bytes, a chunk (64 KiB) at a time; vault.TamperedError
    if a chunk does not authenticate or the body ends early."""
    opener = vault.ChunkOpener(_key(master_key, queue_id), salt, vault.chunk_count(size))
    async for chunk in sealed_chunks(store.read(blob_name(queue_id))):
        yield opener.open(opener.next_index, chunk)
    if not opener.done:
        raise vault.TamperedError("the message's body ends early")


async def read_all(store: BlobStore, master_key: bytes, queue_id: str, salt: bytes, size: int) -> bytes:
    return b"".join([piece async for piece in read(store, master_key, queue_id, salt, size)])


async def delete(store: BlobStore, queue_id: str) -> None:
    await store.delete(blob_name(queue_id))
