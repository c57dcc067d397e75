"""A request's sealed content: the associated data its wrapped key is bound
to, and reading the content back (unlock the data key with the client's
password, then stream a file's chunks through the opener)."""

from __future__ import annotations

from typing import AsyncIterator

from gateway import vault
from gateway.core.models import PaymentRequest, SealedChunk, SealedFile

CHUNKS_PER_QUERY = 8


def key_aad(token_hash: str) -> bytes:
    """What a request's wrapped data key is bound to: its link, so a wrapped
    key copied to another request does not unwrap."""
    return b"request-key:" + token_hash.encode()


def unlock(request: PaymentRequest, password: str) -> bytes:
    """The request's data key; raises vault.WrongPassword. Slow by design:
    run it in the crypto pool."""
    params = vault.KdfParams.from_json(request.kdf)
    return vault.unwrap_with_password(password, request.wrapped_key, params, key_aad(request.token_hash))


async def stream(file: SealedFile, data_key: bytes) -> AsyncIterator[bytes]:
    """The file's plaintext, a chunk at a time; raises vault.TamperedError
    at the first chunk that does not authenticate, truncation included."""
    opener = vault.ChunkOpener(data_key, file.file_salt, file.chunk_count)
    for start in range(0, file.chunk_count, CHUNKS_PER_QUERY):
        rows = await SealedChunk.filter(file_id=file.id, index__gte=start, index__lt=start + CHUNKS_PER_QUERY) \
            .order_by("index").values_list("index", "data")
        for index, data in rows:
            yield opener.open(index, data)
    if not opener.done:
        raise vault.TamperedError("the file ends early")


async def read_all(file: SealedFile, data_key: bytes) -> bytes:
    return b"".join([chunk async for chunk in stream(file, data_key)])
