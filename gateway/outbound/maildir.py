"""The default transport: each message written into a Maildir
(``DATA_DIR/outbox``). The bytes go to ``tmp/``, are fsync'd, renamed into
``new/`` and ``new/`` is fsync'd, so ``new/`` never holds half a message,
even after a crash. Like a delivering MTA, it adds one line on top: a
Return-Path with the envelope sender (the message's bounce address), so the
demo outbox shows what a relay would be given; the rest is written exactly
as given."""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import re
import socket
import threading
import time
from pathlib import Path

from gateway.core.durable import fsync_dir
from gateway.outbound.transport import TemporaryFailure, check_envelope


def _maildir_host(name: str) -> str:
    # Maildir spec: '/' and ':' in the host part are written as \057 and \072.
    # Anything else odd is dropped so the name stays a plain portable file name.
    name = name.replace("/", r"\057").replace(":", r"\072")
    return re.sub(r"[^A-Za-z0-9.\-_\\]", "", name) or "localhost"


def return_path(mail_from: str) -> bytes:
    """The Return-Path line a delivering MTA writes (RFC 5321 4.4); ``<>``
    for a null sender. ``mail_from`` has passed check_envelope (no CR/LF)."""
    return b"Return-Path: <" + mail_from.encode("utf-8") + b">\r\n"


class MaildirTransport:
    """Deliver into a Maildir (``tmp/``, ``new/``, ``cur/``) at ``path``.

    Each message becomes ``new/<sec>.M<usec>P<pid>Q<n>R<random>.<host>.eml``
    (the Maildir spec's unique-name recipe, wall-clock time so names sort by
    arrival; the counter and random part keep names unique across threads,
    processes and reboots). Files are created 0600: they hold payment links.
    The return value of :meth:`deliver` is that file name.

    With a ``delivery_id`` (the outbox passes ``outbound-<id>``) the file is
    ``new/<delivery_id>.eml`` instead, and a message whose file is already
    in ``new/`` or ``cur/`` is not written again: a runner that died after
    writing the file but before recording it, then delivering it again,
    leaves one file, not two.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._host = _maildir_host(socket.gethostname())
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"MaildirTransport({str(self.path)!r})"

    async def deliver(self, message: bytes, mail_from: str, rcpt_to: str, *, delivery_id: str | None = None) -> str:
        check_envelope(message, mail_from, rcpt_to)
        data = return_path(mail_from) + bytes(message)
        try:
            return await asyncio.to_thread(self._write, data, delivery_id)
        except OSError as exc:
            # Disk full, permissions, read-only file system: an operator can
            # fix all of these, and the message is still safe in the queue.
            raise TemporaryFailure(
                f"maildir {self.path}: {exc.strerror or exc} ({errno.errorcode.get(exc.errno or 0, '?')})"
            ) from None

    async def close(self) -> None:
        return None

    def _unique_name(self) -> str:
        with self._lock:
            n = next(self._counter)
        now = time.time_ns()
        sec, usec = divmod(now // 1000, 1_000_000)
        return f"{sec}.M{usec}P{os.getpid()}Q{n}R{os.urandom(6).hex()}.{self._host}.eml"

    def _prepare(self) -> None:
        if self._ready:
            return
        created = False
        for sub in ("", "tmp", "new", "cur"):
            d = self.path / sub
            if not d.is_dir():
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
                created = True
        if created:
            # Make the new directories themselves durable.
            fsync_dir(self.path)
            fsync_dir(self.path.parent)
        self._ready = True

    def _write(self, data: bytes, delivery_id: str | None = None) -> str:
        self._prepare()
        if delivery_id is None:
            name = self._unique_name()
        else:
            name = f"{_maildir_host(delivery_id)}.eml"
            # A reader moves read mail to cur/, adding ":2,FLAGS" to the name.
            if (self.path / "new" / name).exists() or any((self.path / "cur").glob(f"{name}*")):
                return f"{name} (delivered before)"
        tmp = self.path / "tmp" / name
        new = self.path / "new" / name
        # Not O_EXCL with a delivery id: a tmp/ file a dead runner left is rewritten whole.
        exclusive = os.O_EXCL if delivery_id is None else os.O_TRUNC
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | exclusive | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, new)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        fsync_dir(new.parent)
        return name
