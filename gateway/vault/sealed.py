"""A request's sealed content: the associated data its wrapped key is bound
to, and reading the content back (unlock the data key with the client's
password, then stream a file's chunks through the opener).

A file's sealed chunks are one object in the blob store, back to back
(every chunk but the last is CHUNK_SIZE + TAG_SIZE bytes, so chunk i
starts at i times that), or SealedChunk rows for files sealed before the
store existed. `clienttrack blobs migrate` moves rows to the store while
the gateway serves: it names the object on the file's row, then deletes
the chunk rows. A download that began on the rows and finds them gone
carries on from the store at the chunk it had reached, so nobody's
download breaks for the move."""

from __future__ import annotations

from typing import AsyncIterator

from gateway import vault
from gateway.blobs import BlobStore
from gateway.core.models import PaymentRequest, SealedChunk, SealedFile

CHUNKS_PER_QUERY = 8
SEALED_CHUNK_SIZE = vault.CHUNK_SIZE + vault.TAG_SIZE


def key_aad(token_hash: str) -> bytes:
    """What a request's wrapped data key is bound to: its link, so a wrapped
    key copied to another request does not unwrap."""
    return b"request-key:" + token_hash.encode()


def unlock(request: PaymentRequest, password: str) -> bytes:
    """The request's data key; raises vault.WrongPassword. Slow by design:
    run it in the crypto pool."""
    params = vault.KdfParams.from_json(request.kdf)
    return vault.unwrap_with_password(password, request.wrapped_key, params, key_aad(request.token_hash))


async def stream(file: SealedFile, data_key: bytes, store: BlobStore) -> AsyncIterator[bytes]:
    """The file's plaintext, a chunk at a time; raises vault.TamperedError
    at the first chunk that does not authenticate, truncation included,
    and blobs.BlobMissing if its object has been deleted."""
    opener = vault.ChunkOpener(data_key, file.file_salt, file.chunk_count)
    blob = file.blob
    if not blob:
        async for index, data in _rows(file):
            yield opener.open(index, data)
        if opener.done:
            return
        # The rows ran out early: moved to the store meanwhile, or damaged.
        blob = next(iter(await SealedFile.filter(id=file.id).values_list("blob", flat=True)), "")
        if not blob:
            raise vault.TamperedError("the file ends early")
    async for chunk in sealed_chunks(store.read(blob, opener.next_index * SEALED_CHUNK_SIZE)):
        yield opener.open(opener.next_index, chunk)
    if not opener.done:
        raise vault.TamperedError("the file ends early")


async def _rows(file: SealedFile) -> AsyncIterator[tuple[int, bytes]]:
    """The file's chunk rows in order, a few per query, until they stop."""
    for start in range(0, file.chunk_count, CHUNKS_PER_QUERY):
        rows = await SealedChunk.filter(file_id=file.id, index__gte=start, index__lt=start + CHUNKS_PER_QUERY) \
            .order_by("index").values_list("index", "data")
        for row in rows:
            yield row
        if len(rows) < min(CHUNKS_PER_QUERY, file.chunk_count - start):
            return


async def sealed_chunks(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Cut a stream of bytes into sealed chunks: full ones, then the rest."""
    pending = bytearray()
    async for piece in pieces:
        pending += piece
        if len(pending) >= SEALED_CHUNK_SIZE:
            view = memoryview(pending)
            whole = len(pending) - len(pending) % SEALED_CHUNK_SIZE
            for start in range(0, whole, SEALED_CHUNK_SIZE):
                yield bytes(view[start:start + SEALED_CHUNK_SIZE])
            view.release()
            del pending[:whole]
    if pending:
        yield bytes(pending)


async def read_all(file: SealedFile, data_key: bytes, store: BlobStore) -> bytes:
    return b"".join([chunk async for chunk in stream(file, data_key, store)])
