"""The data directory is the gateway's alone: mode 0700, every file 0600.

It holds the master key, the database (wrapped data keys, hints: enough to
guess passwords offline) and the outbox. Made by the gateway, it gets those
modes whatever the umask; made by someone else, or loosened since, the
gateway refuses to start and names the path to fix, rather than run with
its secrets readable by every account on the host.

The SQLite file is made here too, mode 0600, before SQLite opens it: SQLite
would make it with the umask's mode, and it gives its -wal and -shm files
the database file's own mode.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit


BLOBS = "blobs"  # gateway/blobs/files.py keeps sealed files there


class DataDirError(Exception):
    """The data directory or a file in it is open to group or others."""


def sqlite_path(database_url: str) -> str | None:
    """The file of a sqlite:// URL, or None for another database (or memory)."""
    parts = urlsplit(database_url)
    if parts.scheme != "sqlite":
        return None
    path = parts.netloc + parts.path
    return None if not path or path == ":memory:" else path


def prepare(data_dir: Path, database_url: str) -> None:
    """Make what is missing with private modes, then :func:`check` it all."""
    if not data_dir.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)  # mkdir's mode is cut by the umask; chmod's is not
    check(data_dir)
    database = sqlite_path(database_url)
    if database is not None:
        try:
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
        except FileExistsError:
            pass
        else:
            os.chmod(database, 0o600)
        _check_file(Path(database))  # it may live outside the data directory


def check(data_dir: Path) -> None:
    """Raise :class:`DataDirError` naming the first path that group or
    others may open."""
    mode = stat.S_IMODE(os.stat(data_dir).st_mode)
    if mode & 0o077:
        raise DataDirError(f"the data directory {data_dir} has mode {mode:04o}: it must be private "
                           f"to the gateway's user (chmod 700 {data_dir})")
    for folder, dirs, files in os.walk(data_dir):
        if Path(folder) == data_dir and BLOBS in dirs:
            # Sealed files, one per document: walking them would make every
            # start cost a stat per document ever kept. The blob store makes
            # them 0600 in 0700 folders itself, and they are sealed.
            dirs.remove(BLOBS)
        for name in files:
            _check_file(Path(folder) / name)


def _check_file(path: Path) -> None:
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISREG(info.st_mode) and mode & 0o077:
        raise DataDirError(f"{path} has mode {mode:04o}: it must be private to the gateway's user "
                           f"(chmod 600 {path})")
