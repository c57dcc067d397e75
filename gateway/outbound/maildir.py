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
from gateway.outbound.transport import DeliveryFailure, TemporaryFailure, check_envelope


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
        # Its folders' paths as text, joined to a name by hand: the outbox
        # writes two files a request, and pathlib's joins and conversions
        # were a fifth of its thread's work beside the signing.
        self._tmp, self._new, self._cur = (os.path.join(self.path, sub) for sub in ("tmp", "new", "cur"))
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
            raise self._failure(exc) from None

    def _failure(self, exc: OSError) -> TemporaryFailure:
        # Disk full, permissions, read-only file system: an operator can
        # fix all of these, and the message is still safe in the queue.
        return TemporaryFailure(
            f"maildir {self.path}: {exc.strerror or exc} ({errno.errorcode.get(exc.errno or 0, '?')})")

    def write_many(self, messages: list[tuple[bytes, str, str, str]]) -> list[str | DeliveryFailure]:
        """deliver() for several (message, mail_from, rcpt_to, delivery_id),
        synchronously (run it on a thread): each file written and fsync'd in
        tmp/, then each renamed into new/, and new/ fsync'd once for all of
        them. Each message's outcome in order: its note, or the failure
        deliver() would have raised (a message that failed was not
        delivered; those that did not fail are in new/ for good)."""
        outcomes: list[str | DeliveryFailure] = []
        written: list[tuple[int, str, str, int]] = []
        try:
            self._prepare()
        except OSError as exc:
            return [self._failure(exc)] * len(messages)
        read = None  # cur/'s names, listed once for the batch (it holds all the mail a reader has seen)
        try:
            for index, (message, mail_from, rcpt_to, delivery_id) in enumerate(messages):
                try:
                    check_envelope(message, mail_from, rcpt_to)
                    if read is None and delivery_id is not None:
                        read = self._read_names()
                    name, repeat = self._name(delivery_id, read)
                    if repeat:
                        outcomes.append(f"{name} (delivered before)")
                        continue
                    tmp, fd = self._unflushed_tmp(return_path(mail_from) + bytes(message), name, delivery_id is None)
                except DeliveryFailure as exc:
                    outcomes.append(exc)
                except OSError as exc:
                    outcomes.append(self._failure(exc))
                else:
                    outcomes.append(name)
                    written.append((index, tmp, f"{self._new}/{name}", fd))
            # Every file written before the first is flushed: the kernel's
            # writeback of the later ones is under way by the time each is
            # flushed. Flushed one after the other as they were written, each
            # flush waited for its file alone (~3 more switches of the
            # thread a batch of four, and ~0.15 ms of CPU).
            flushed = []
            while written:
                index, tmp, new, fd = written.pop(0)
                try:
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as exc:
                    _unlink(tmp)
                    outcomes[index] = self._failure(exc)
                else:
                    flushed.append((index, tmp, new))
        finally:
            for index, tmp, new, fd in written:  # what a failure above left open
                os.close(fd)
                _unlink(tmp)
        renamed = []
        for index, tmp, new in flushed:
            try:
                os.rename(tmp, new)
            except OSError as exc:
                _unlink(tmp)
                outcomes[index] = self._failure(exc)
            else:
                renamed.append(index)
        if renamed:
            try:
                fsync_dir(self._new)
            except OSError as exc:
                for index in renamed:
                    outcomes[index] = self._failure(exc)
        return outcomes

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

    def _read_names(self) -> set[str]:
        """The names of the files in cur/ without the ":2,FLAGS" a reader
        adds when it moves read mail there."""
        return {entry.partition(":")[0] for entry in os.listdir(self._cur)}

    def _name(self, delivery_id: str | None, read: set[str] | None = None) -> tuple[str, bool]:
        """The file's name, and whether a message of that delivery id is
        in new/ or cur/ (``read``: cur/'s names, if listed already)."""
        if delivery_id is None:
            return self._unique_name(), False
        name = f"{_maildir_host(delivery_id)}.eml"
        if os.path.exists(f"{self._new}/{name}"):
            return name, True
        return name, name in (self._read_names() if read is None else read)

    def _write_tmp(self, data: bytes, name: str, exclusive: bool) -> tuple[str, str]:
        """``data`` in tmp/``name``, fsync'd; (that file, its place in new/)."""
        tmp, fd = self._unflushed_tmp(data, name, exclusive)
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink(tmp)
            raise
        return tmp, f"{self._new}/{name}"

    def _unflushed_tmp(self, data: bytes, name: str, exclusive: bool) -> tuple[str, int]:
        """``data`` in tmp/``name``, not yet flushed; (that file, its open descriptor)."""
        tmp = f"{self._tmp}/{name}"
        # Not O_EXCL with a delivery id: a tmp/ file a dead runner left is rewritten whole.
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BaseException:
            os.close(fd)
            _unlink(tmp)
            raise
        return tmp, fd

    def _write(self, data: bytes, delivery_id: str | None = None) -> str:
        self._prepare()
        name, repeat = self._name(delivery_id)
        if repeat:
            return f"{name} (delivered before)"
        tmp, new = self._write_tmp(data, name, delivery_id is None)
        try:
            os.rename(tmp, new)
        except BaseException:
            _unlink(tmp)
            raise
        fsync_dir(self._new)
        return name


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
