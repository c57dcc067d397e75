"""Storing a request's sealed files: the chunks go to the blob store first,
then the rows that name them are committed with the request.

The store is written before the transaction so that no database
transaction waits on a 25 MB upload. If the transaction then fails, the
objects are deleted again; if the process dies in between, what is left
can never be opened (its data key was wrapped only in the request row that
was never committed) and nothing names it: housekeeping deletes it a day
later (documents/orphans.py)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from gateway import vault
from gateway.blobs import BlobStore
from gateway.core import rows
from gateway.core.models import ClientReply, PaymentRequest, SealedFile

log = logging.getLogger("clienttrack.documents")


@dataclass(frozen=True)
class SealedItem:
    filename: str
    content_type: str
    size: int
    salt: bytes
    chunks: list[bytes]
    # For a client's file: the line of the request's upload= checklist it answers.
    upload_item: int | None = None

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)


def seal_item(data_key: bytes, filename: str, content_type: str, data: bytes) -> SealedItem:
    """Seal one file under a fresh file salt (CPU: run it in the crypto pool)."""
    salt = vault.new_file_salt()
    return SealedItem(filename, content_type, len(data), salt, vault.seal_chunks(data_key, salt, data))


def name_for(file_salt: bytes) -> str:
    """The object's name, from the file's salt: random and never reused, so
    names never collide, yet a file always gets the same one, so moving it
    again after a crash (`blobs migrate`) overwrites rather than leaving a
    second copy. Hashed so the name shows nothing of the salt."""
    digest = _digest(file_salt)
    return f"{_folder(digest)}/{digest[:32]}"


def folders() -> list[str]:
    """Every folder name_for names files into ("f/00" to "f/ff"): the
    service has the store make them all at start (BlobStore.make_folders)."""
    return [_folder(f"{first:02x}") for first in range(256)]


def names_for(file_salts: list[bytes]) -> list[str]:
    """The names of files stored together (a request's: put_items): each
    file's own last part, as name_for gives it, but all in the first
    file's folder, so the file store flushes one folder for them, not one
    each. The rows keep the names (name_for is only for files that have
    none yet: `blobs migrate`)."""
    if not file_salts:
        return []
    folder = _folder(_digest(file_salts[0]))
    return [f"{folder}/{_digest(salt)[:32]}" for salt in file_salts]


def _digest(file_salt: bytes) -> str:
    return hashlib.sha256(b"clienttrack blob name:" + file_salt).hexdigest()


def _folder(digest: str) -> str:
    """The fan-out folder of a name whose hex digest this is: its first byte."""
    return f"f/{digest[:2]}"


@dataclass(frozen=True)
class StoredItem:
    """A file already sealed and in the store (a StreamedFile's), as
    record() names it."""

    filename: str
    content_type: str
    size: int
    salt: bytes
    chunk_count: int
    upload_item: int | None = None


@dataclass(frozen=True)
class Stored:
    item: SealedItem | StoredItem
    blob: str


class StreamedFile:
    """A file sealed under ``data_key`` and written to the store as its
    bytes are decoded (a large message's attachment: mail/pieces.py's sink),
    never held whole. ``write`` and ``close`` only seal (they may run on a
    thread, as the splitter calls them); ``flush`` hands what they sealed
    to the store, and once closed, stores the object for good."""

    def __init__(self, store: BlobStore, data_key: bytes) -> None:
        self.salt = vault.new_file_salt()
        self.blob = name_for(self.salt)
        self.size = 0
        self.chunk_count = 0
        self.closed = False
        self.stored = False
        self._store = store
        self._sealer = vault.ChunkSealer(data_key, self.salt)
        self._writer = store.writer(self.blob)
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self._pending += self._sealer.feed(data)

    def close(self) -> StreamedFile:
        self._pending.append(self._sealer.finish())
        self.chunk_count = self._sealer.chunk_count
        self.closed = True
        return self

    async def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            await self._writer.write(pending)
        if self.closed and not self.stored:
            await self._writer.close()
            self.stored = True

    def stored_as(self, filename: str, content_type: str) -> Stored:
        """As put_items would have stored it, under the parsed file's name."""
        return Stored(StoredItem(filename, content_type, self.size, self.salt, self.chunk_count), self.blob)

    async def discard(self) -> None:
        """Nothing of it stays (best effort, like discard())."""
        self._pending = []
        try:
            if self.stored:
                await self._store.delete(self.blob)
            else:
                await self._writer.abort()
        except Exception:
            log.warning("could not delete the unused sealed object %s; it cannot be opened", self.blob)


async def put_items(store: BlobStore, items: list[SealedItem]) -> list[Stored]:
    """Each item's sealed chunks as one object; all or none of them (all
    in one put_all, in one folder: a request's files cost one hand-off and
    one folder's fsync, not one each)."""
    stored = _named(items)
    try:
        await store.put_all([(s.blob, s.item.chunks) for s in stored])
    except BaseException:
        await discard(store, stored)  # those not stored are no error to delete
        raise
    return stored


def put_items_blocking(store: BlobStore, items: list[SealedItem]) -> list[Stored]:
    """put_items, from a thread, for a store whose put_all_blocking is not
    None (its objects are then all stored, or none when it raises)."""
    stored = _named(items)
    store.put_all_blocking([(s.blob, s.item.chunks) for s in stored])
    return stored


def _named(items: list[SealedItem]) -> list[Stored]:
    return [Stored(item, name) for item, name in zip(items, names_for([item.salt for item in items]))]


async def record(request: PaymentRequest, stored: list[Stored], *, first_position: int = 0,
                 reply: ClientReply | None = None) -> None:
    """The rows that name the objects (inside the caller's transaction). The
    first is the text (the staff's message, or the client's reply: then
    ``reply`` is set); the others follow at the next positions."""
    await SealedFile.bulk_create([row.made() for row in files(
        request.id, stored, first_position=first_position, reply_id=reply.id if reply is not None else None)])


def files(request_id: int | None, stored: list[Stored], *, first_position: int = 0,
          reply_id: int | None = None) -> list[rows.New]:
    """record()'s rows, as rows.New (for a caller that writes them itself:
    gateway/core/rows.py)."""
    return [
        rows.New(SealedFile, {
            "request_id": request_id, "reply_id": reply_id, "position": first_position + offset,
            "is_body": offset == 0, "filename": s.item.filename, "content_type": s.item.content_type,
            "size": s.item.size, "file_salt": s.item.salt, "chunk_count": s.item.chunk_count, "blob": s.blob,
            "upload_item": s.item.upload_item})
        for offset, s in enumerate(stored)
    ]


async def discard(store: BlobStore, stored: list[Stored]) -> None:
    """Delete objects no committed row names (best effort: see the module's note)."""
    for s in stored:
        try:
            await store.delete(s.blob)
        except Exception:
            log.warning("could not delete the unused sealed object %s; it cannot be opened", s.blob)
