"""Making a file system change survive a crash, and private files that are
never seen half-written."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def fsync_dir(path: str | Path) -> None:
    """Flush a directory, so that the names created or renamed in it are on
    disk; raises OSError like the system call."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush_file(path: Path) -> None:
    """Flush what has been written to the file at ``path``, by whoever
    wrote it (a flush is the file's, not one descriptor's); nothing if
    there is no such file. Raises OSError like the system call."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _private_temporary(final: Path, data: bytes) -> Path:
    """``data`` in a new file beside ``final`` (mode 0600, flushed)."""
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink()
        raise
    os.close(fd)
    return tmp


def create_private(final: Path, data: bytes) -> bool:
    """Make ``final`` (mode 0600) holding ``data`` unless it exists; True if
    this call made it. Written under a temporary name and hard-linked into
    place, which fails if the name exists: never seen half-written, and of
    processes racing to make it, one wins and the others see its file. The
    directory is not flushed: the caller says whether that may fail."""
    tmp = _private_temporary(final, data)
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def replace_private(final: Path, data: bytes) -> None:
    """Put ``data`` at ``final`` (mode 0600) whole, in one rename, and flush
    the directory."""
    os.replace(_private_temporary(final, data), final)
    fsync_dir(final.parent)
