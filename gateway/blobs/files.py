"""The embedded blob store: one file per object under DATA_DIR/blobs/.

A file is written under a temporary name in its final folder, fsynced,
renamed into place and the folder fsynced, so after a crash the name holds
the whole object or nothing. Objects put together (put_all) are all
written and fsynced, then all renamed, then each folder they went into
fsynced once: a request's files, named into one folder
(storing.names_for), cost one folder's fsync, not one each; the folders
themselves are made ahead (make_folders, at the service's start), so a
put makes none and flushes no folder's parent. Folders are
0700 and files 0600, like the rest of the data directory. The blocking
file work runs in threads so the event loop keeps serving while a 25 MB
attachment is written or read.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import AsyncIterator, Sequence

from gateway.blobs.store import BlobMissing, check_name
from gateway.core.durable import fsync_dir

# What one read hands back: four sealed chunks. Bigger pieces cost memory
# per download; smaller ones cost a thread hand-off each (bench_blobs.py).
READ_SIZE = 4 * (65536 + 16)
TEMP_PREFIX = ".tmp-"


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return f"files under {self.root}"

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    async def put(self, name: str, pieces: Sequence[bytes]) -> None:
        await asyncio.to_thread(self._put, self._path(name), pieces)

    async def put_all(self, objects: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        await asyncio.to_thread(self.put_all_blocking, objects)

    def put_all_blocking(self, objects: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        self._put_all([(self._path(name), pieces) for name, pieces in objects])

    def _put_all(self, named: list[tuple[Path, Sequence[bytes]]]) -> None:
        opened: list[tuple[Path, int, list[Path]]] = []
        try:
            for path, pieces in named:
                opened.append(_open_temporary(self.root, path))
                _write_all(opened[-1][1], pieces)
        except BaseException:
            for temp, fd, _ in opened:
                _discard(temp, fd)
            raise
        _install(opened, [path for path, _ in named])

    def _put(self, path: Path, pieces: Sequence[bytes]) -> None:
        self._put_all([(path, pieces)])

    async def make_folders(self, folders: Sequence[str]) -> None:
        await asyncio.to_thread(self._make_each, [self._path(folder) for folder in folders])

    def _make_each(self, folders: list[Path]) -> None:
        """Each folder that is missing made, then each folder that got a new
        entry flushed once (256 fan-out folders: one fsync, not one each
        as puts made them, a mkdir inside a request's put). A put into a
        folder that is missing after all (removed by hand) still makes it."""
        parents = [parent for folder in folders for parent in _make_folders(self.root, folder)]
        for parent in dict.fromkeys(parents):
            fsync_dir(parent)

    def writer(self, name: str) -> FileWriter:
        return FileWriter(self.root, self._path(name))

    async def read(self, name: str, offset: int = 0) -> AsyncIterator[bytes]:
        path = self._path(name)
        try:
            handle = await asyncio.to_thread(open, path, "rb", buffering=0)
        except FileNotFoundError:
            raise BlobMissing(name) from None
        try:
            if offset:
                handle.seek(offset)
            while True:
                piece = await asyncio.to_thread(handle.read, READ_SIZE)
                if not piece:
                    return
                yield piece
        finally:
            handle.close()

    async def listed(self) -> AsyncIterator[list[tuple[str, float]]]:
        """A folder's objects a batch (each folder read by a thread), a
        file's time its modification time: its last write, which a rename
        into place keeps."""
        folders = [self.root]
        while folders:
            entries, inner = await asyncio.to_thread(_folder_entries, self.root, folders.pop())
            folders += inner
            if entries:
                yield entries

    async def delete(self, name: str) -> None:
        path = self._path(name)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def close(self) -> None:
        pass

    async def tidy(self) -> None:
        await asyncio.to_thread(self.sweep_temporary)

    def sweep_temporary(self, older_than_seconds: float = 3600.0) -> int:
        """Delete temporary files a crash left behind mid-write (never a
        named object); returns how many."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for temp in self.root.glob(f"*/*/{TEMP_PREFIX}*"):
            try:
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


class FileWriter:
    """An object written as its pieces come: into a temporary file in its
    final folder, by a thread, the next pieces gathered while the last
    ones are written (so at most about two batches are held); fsynced and
    renamed into place by close, as put does."""

    BATCH = 1 << 20  # hand the thread a mebibyte at a time, not every 64 KiB

    def __init__(self, root: Path, path: Path) -> None:
        self.root, self.path = root, path
        self._opened: tuple[Path, int, list[Path]] | None = None
        self._gathered: list[bytes] = []
        self._gathered_size = 0
        self._writing: asyncio.Future | None = None

    async def write(self, pieces: Sequence[bytes]) -> None:
        self._gathered.extend(pieces)
        self._gathered_size += sum(map(len, pieces))
        if self._gathered_size >= self.BATCH:
            await self._hand_over()

    async def _hand_over(self) -> None:
        if self._writing is not None:
            await self._writing  # its error, if any, is raised here
            self._writing = None
        pieces, self._gathered, self._gathered_size = self._gathered, [], 0
        self._writing = asyncio.ensure_future(asyncio.to_thread(self._write, pieces))

    def _write(self, pieces: list[bytes]) -> None:
        if self._opened is None:
            self._opened = _open_temporary(self.root, self.path)
        _write_all(self._opened[1], pieces)

    async def close(self) -> None:
        await self._hand_over()
        await self._writing
        self._writing = None
        await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        opened = self._opened or _open_temporary(self.root, self.path)
        self._opened = None
        _install([opened], [self.path])

    async def abort(self) -> None:
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
            self._writing = None
        self._gathered = []
        if self._opened is not None:
            temp, fd, _ = self._opened
            self._opened = None
            await asyncio.to_thread(_discard, temp, fd)


def _open_temporary(root: Path, path: Path) -> tuple[Path, int, list[Path]]:
    """A new temporary file beside ``path``: (its path, an fd to write, the
    folders made for it, whose entries must reach the disk too)."""
    folders = _make_folders(root, path.parent)
    temp = path.with_name(f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return temp, os.open(temp, flags, 0o600), folders


def _install(opened: list[tuple[Path, int, list[Path]]], paths: list[Path]) -> None:
    """The temporary files written (``_open_temporary``'s) flushed and
    closed, then renamed to ``paths``, then the folders' entries flushed,
    each folder once. A rename is never flushed before its file's bytes
    are (so a name holds the whole object or nothing); on failure none of
    the files stays, temporary or renamed."""
    at = 0
    try:
        for at, (_, fd, _) in enumerate(opened):
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        for _, fd, _ in opened[at + 1:]:
            os.close(fd)
        for temp, _, _ in opened:
            temp.unlink(missing_ok=True)
        raise
    for at, ((temp, _, _), path) in enumerate(zip(opened, paths)):
        try:
            os.rename(temp, path)
        except BaseException:
            # None of them stays: those renamed already go too.
            for left in [temp for temp, _, _ in opened[at:]] + paths[:at]:
                left.unlink(missing_ok=True)
            raise
    # Each folder once, however many of the objects went into it.
    parents = [path.parent for path in paths] + [parent for _, _, made_in in opened for parent in made_in]
    for folder in dict.fromkeys(parents):
        fsync_dir(folder)


def _folder_entries(root: Path, folder: Path) -> tuple[list[tuple[str, float]], list[Path]]:
    """The objects in ``folder`` as (name, modification time), and the
    folders in it; temporary files (a write under way) are no object."""
    entries: list[tuple[str, float]] = []
    inner: list[Path] = []
    try:
        found = list(os.scandir(folder))
    except FileNotFoundError:  # removed meanwhile (by hand)
        return entries, inner
    prefix = "" if folder == root else folder.relative_to(root).as_posix() + "/"
    for entry in found:
        try:
            if entry.is_dir(follow_symlinks=False):
                inner.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False) and not entry.name.startswith(TEMP_PREFIX):
                entries.append((prefix + entry.name, entry.stat(follow_symlinks=False).st_mtime))
        except FileNotFoundError:  # deleted meanwhile
            pass
    return entries, inner


def _write_all(fd: int, pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        view = memoryview(piece)
        while view:
            view = view[os.write(fd, view):]


def _discard(temp: Path, fd: int) -> None:
    os.close(fd)
    temp.unlink(missing_ok=True)


def _make_folders(root: Path, folder: Path) -> list[Path]:
    """Make ``folder`` and its parents up to ``root`` (0700); returns the
    folders whose new entries must reach the disk too."""
    missing = []
    current = folder
    while not current.exists() and current != root.parent:
        missing.append(current)
        current = current.parent
    made: list[Path] = []
    for path in reversed(missing):
        path.mkdir(mode=0o700, parents=path == root, exist_ok=True)
        made.append(path.parent)
    return made
