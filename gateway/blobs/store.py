"""The blob store's interface: named objects, written whole, read as a
stream. Its users store only sealed chunks in it (gateway/vault/sealed.py),
so a store never holds a clear byte or a key; it knows nothing of
requests, files or chunks.

Every implementation passes the same contract (tests/test_blobs_contract.py):

* ``put`` makes the object visible whole or not at all: a crash part-way
  leaves no half object under the name.
* ``put_all`` stores several objects as ``put`` does, in one go (a
  request's files: one hand-off to the file store's thread, not one each).
  An error may leave some of them stored; it is raised once no write is
  still under way, so deleting them all afterwards leaves none.
* ``read`` yields the object's bytes from an offset, in pieces of any size
  (callers reframe them), and raises :class:`BlobMissing` for an unknown name.
* ``delete`` is for good, and deleting what is not there is no error (so a
  deletion interrupted part-way can simply be done again).
* ``listed`` names every object, with when it was last written (seconds
  since the epoch, by the store's clock), a batch at a time; never a
  temporary file of a write under way.
* ``writer`` writes an object as its pieces come (a large message's body
  while it arrives): nothing is under the name until ``close``, which
  returns once the whole object is stored for good; ``abort`` leaves
  nothing.
"""

from __future__ import annotations

import re
from typing import AsyncIterator, Callable, Protocol, Sequence

# Lower-case letters, digits and dashes, in "/"-separated parts: safe as a
# path under the store's folder and as an S3 key, and never "..".
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}(/[a-z0-9][a-z0-9-]{0,63}){0,3}")


class BlobMissing(Exception):
    """No object of that name (never stored, or deleted)."""


class BlobStoreError(Exception):
    """The store failed (unreachable, refused): a transient fault to retry.
    The message names the object, never its content."""


class BlobWriter(Protocol):
    async def write(self, pieces: Sequence[bytes]) -> None:
        """Add these pieces to the object, in order."""

    async def close(self) -> None:
        """The object is stored whole under its name, for good."""

    async def abort(self) -> None:
        """Forget what was written; nothing is stored."""


class BlobStore(Protocol):
    # put_all as a blocking call, for a caller already on a thread of its
    # own (a request's crypto hand-off: one trip through the event loop,
    # not two); None where the puts are the event loop's own work (S3's
    # requests): then put_all it is. When it raises, none of the objects
    # is left.
    put_all_blocking: Callable[[Sequence[tuple[str, Sequence[bytes]]]], None] | None

    async def put(self, name: str, pieces: Sequence[bytes]) -> None:
        """Store the pieces, in order, as one object called ``name``."""

    async def put_all(self, objects: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        """Each (name, pieces) stored as ``put`` stores it."""

    def writer(self, name: str) -> BlobWriter:
        """An object called ``name``, written a few pieces at a time."""

    def read(self, name: str, offset: int = 0) -> AsyncIterator[bytes]:
        """The object's bytes from ``offset`` to its end, a piece at a time."""

    async def delete(self, name: str) -> None:
        """Delete the object for good; nothing happens if it is not there."""

    def listed(self) -> AsyncIterator[list[tuple[str, float]]]:
        """Every object's (name, when it was last written), a batch at a
        time (what documents/orphans.py sweeps from)."""

    async def make_folders(self, folders: Sequence[str]) -> None:
        """Make, ahead of time, the folders objects will be named into, so
        that no put has to (object storage has no folders: nothing to do)."""

    async def tidy(self) -> None:
        """Clear away what interrupted writes left (never an object)."""

    async def close(self) -> None:
        """Let go of connections and threads."""

    def describe(self) -> str:
        """Where the objects go, for people (no credentials)."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError("not a blob name")
    return name
