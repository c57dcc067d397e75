"""`clienttrack blobs migrate`: move the sealed chunks that are still rows
in the database (files sealed before the blob store) into the store.

Safe while the gateway serves and safe to stop at any moment. Each file is
moved on its own: its chunks are written to the store as one object under
the name its salt gives it, read back and compared, and only then, in one
transaction, its row names the object and its chunk rows are deleted. A
download that was reading those rows carries on from the store
(gateway/vault/sealed.py). Stopped half-way, a run leaves every file
either in rows or in the store, never neither; run again, it overwrites
the same object names, so nothing is left behind twice."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable

from tortoise.transactions import in_transaction

from gateway.blobs import BlobStore
from gateway.core.models import SealedChunk, SealedFile
from gateway.documents.storing import name_for

log = logging.getLogger("clienttrack.migrate")

ROWS_PER_QUERY = 64


@dataclass
class Moved:
    files: int = 0
    bytes: int = 0
    # Files whose rows are damaged (a chunk missing): left as they are.
    damaged: list[int] = field(default_factory=list)


async def left_to_move() -> int:
    return await SealedFile.filter(blob="").count()


async def migrate(store: BlobStore, batch: int = 20,
                  progress: Callable[[Moved], None] = lambda moved: None) -> Moved:
    """Move every file still in rows; `progress` hears after each file."""
    moved = Moved()
    after = 0
    while True:
        files = await SealedFile.filter(blob="", id__gt=after).order_by("id").limit(batch)
        if not files:
            return moved
        for file in files:
            after = file.id
            size = await move_file(store, file)
            if size is None:
                moved.damaged.append(file.id)
            else:
                moved.files += 1
                moved.bytes += size
            progress(moved)


async def move_file(store: BlobStore, file: SealedFile) -> int | None:
    """Move one file's rows to the store; the bytes moved, 0 if there was
    nothing to move any more, None if its rows are damaged."""
    chunks = await _chunk_rows(file)
    if chunks is None:
        log.error("sealed file %s: its chunk rows are incomplete; left in the database", file.id)
        return None
    name = name_for(file.file_salt)
    await store.put(name, chunks)
    digest = hashlib.sha256()
    async for piece in store.read(name):
        digest.update(piece)
    if digest.digest() != hashlib.sha256(b"".join(chunks)).digest():
        raise RuntimeError(f"sealed file {file.id}: the store gave back other bytes than were written; "
                           "nothing was deleted")
    async with in_transaction():
        named = await SealedFile.filter(id=file.id, blob="").update(blob=name)
        if named:
            await SealedChunk.filter(file_id=file.id).delete()
    if not named:
        # Deleted meanwhile (retention), or moved by another run: it names
        # this object or nothing; in the second case the object must go.
        if not await SealedFile.filter(id=file.id, blob=name).exists():
            await store.delete(name)
        return 0
    return sum(len(c) for c in chunks)


async def _chunk_rows(file: SealedFile) -> list[bytes] | None:
    chunks: list[bytes] = []
    for start in range(0, file.chunk_count, ROWS_PER_QUERY):
        rows = await SealedChunk.filter(file_id=file.id, index__gte=start, index__lt=start + ROWS_PER_QUERY) \
            .order_by("index").values_list("index", "data")
        for index, data in rows:
            if index != len(chunks):
                return None
            chunks.append(bytes(data))
    return chunks if len(chunks) == file.chunk_count else None
