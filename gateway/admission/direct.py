"""aiosmtpd's SMTP session driven by the transport's callbacks.

aiosmtpd 1.4.6 runs each session as a task reading a ``StreamReader``: every
command line is a future made, awaited and woken through the event loop
(a task step, a ``call_soon``), every reply a write and a ``drain``, and the
reader holds at most 2 KB before it stops the socket (DATA then arrives in
pieces of a line or two). Under ``smtp-source`` (a new connection a
message) that machinery cost about as much as everything else the
admission path does.

:class:`DirectSMTP` keeps aiosmtpd's commands (its ``smtp_*`` methods, its
replies byte for byte: tests/test_smtp_protocol.py) and replaces the loop
around them: ``data_received`` splits the lines itself, exactly as
``StreamReader.readuntil`` with aiosmtpd's 1,001-octet limit does, and
answers each at once. Only a command the handler has a hook for (the
gateway's RCPT look-up and DATA commit) runs in a task, as the handler's
code may need one; lines that arrive meanwhile wait in the session's
buffer, as they waited in the reader's. At most ``INBOX_LIMIT`` octets wait before the socket stops
reading. DATA takes what the buffer holds up to the end of data in one
block (:meth:`DirectSMTP.data_blocks`).

Only where :class:`~gateway.admission.protocol.QuickSMTP` builds the object
itself (aiosmtpd 1.4.6, the gateway's options: no TLS, no AUTH, no PROXY,
no call limits) is the session driven this way; otherwise it is aiosmtpd's
own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import aiosmtpd.smtp as aiosmtpd_smtp
from aiosmtpd.smtp import MISSING, sanitized_log, syntax

from gateway.admission.data import end_of_data
from gateway.admission.protocol import QuickSMTP

_log = aiosmtpd_smtp.log
# Octets that may wait unread in a session (pipelined commands while one
# is being handled, DATA not yet taken) before the socket stops reading;
# one read more may arrive (asyncio reads up to 256 KiB at a time), as it
# did into aiosmtpd's StreamReader.
INBOX_LIMIT = 64 * 1024
# DATA ends at CRLF "." CRLF; the CRLF of the DATA line counts as the first.
END_OF_DATA = b"\r\n.\r\n"
# A line longer than the limit, dropped up to its end (aiosmtpd answers it
# once the line is over).
_TOO_LONG = object()


class DirectSMTP(QuickSMTP):
    """aiosmtpd's SMTP without a stream reader or a task a session."""

    _direct = False  # True where QuickSMTP built the object itself (_built_quick)

    def _built_quick(self) -> None:
        super()._built_quick()
        self._direct = True
        self._inbox = bytearray()
        self._discarding = False  # inside a command line longer than the limit
        self._running: asyncio.Task | None = None  # a command that had to wait
        self._waiting: asyncio.Future | None = None  # DATA waiting for more
        self._reading_paused = False
        self._bogus_budget = aiosmtpd_smtp.BOGUS_LIMIT
        self._data_tail = b""
        self._eof = False
        self._at_once = False  # a command is being answered outside a task

    # -- the transport's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._direct:
            super().connection_made(transport)
            return
        # aiosmtpd's connection_made and the start of its _handle_client.
        self._set_rset_state()
        self.session = self._create_session()
        self.session.peer = transport.get_extra_info("peername")
        self._reset_timeout()
        asyncio.StreamReaderProtocol.connection_made(self, transport)
        self.transport = transport
        _log.info("Peer: %r", self.session.peer)
        _log.info("%r handling connection", self.session.peer)
        self._write(f"220 {self.hostname} {self.__ident__}")

    def data_received(self, data: bytes) -> None:
        if not self._direct:
            super().data_received(data)
            return
        self._inbox += data
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)
        if self._running is None:
            self._serve()
        if len(self._inbox) > INBOX_LIMIT and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        if not self._direct:
            return super().eof_received()
        _log.info("%r EOF received", self.session.peer)
        # aiosmtpd cancels the session's task, which closes the transport.
        self._eof = True
        if self._running is not None:
            self._running.cancel()
        elif self.transport is not None:
            self.transport.close()
        return asyncio.StreamReaderProtocol.eof_received(self)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._direct:
            super().connection_lost(error)
            return
        _log.info("%r connection lost", self.session.peer)
        self._timeout_handle.cancel()
        asyncio.StreamReaderProtocol.connection_lost(self, error)
        if self._running is not None:
            self._running.cancel()
        self.transport = None

    # -- commands

    def _serve(self) -> None:
        """Answer the complete command lines waiting, in order, until one
        goes on in a task (this goes on after it) or the client stops
        reading the replies (this goes on once it reads them again)."""
        while (self._running is None and not self._paused and self.transport is not None
               and not self.transport.is_closing()):
            line = self._next_line()
            if line is None:
                break
            self._answer(line)
        if self._reading_paused and len(self._inbox) <= INBOX_LIMIT and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._direct and self._running is None and self.transport is not None:
            self._serve()

    def _next_line(self) -> bytes | object | None:
        """The next line up to its LF, as ``StreamReader.readuntil()`` reads
        it with aiosmtpd's limit; _TOO_LONG for a line over the limit (once
        it ended); None when no line is complete yet."""
        inbox, limit = self._inbox, self.line_length_limit
        end = inbox.find(b"\n")
        if end < 0:
            if len(inbox) > limit:  # readuntil's LimitOverrunError: aiosmtpd drops it and reads on
                self._discarding = True
                inbox.clear()
            return None
        if self._discarding or end > limit:
            self._discarding = False
            del inbox[:end + 1]
            return _TOO_LONG
        line = bytes(inbox[:end + 1])
        del inbox[:end + 1]
        return line

    def _answer(self, line: bytes | object) -> None:
        """One turn of aiosmtpd 1.4.6's ``_handle_client`` loop, for one line.
        A command the handler has a hook for runs in a task of its own: the
        handler's code may wait, and may need a task (asyncio.timeout, a
        database pool) and the context a task keeps. aiosmtpd's own command
        code waits for nothing but its replies (push, which does not wait
        here: the loop stops instead while the client is not reading them),
        so it runs at once."""
        parsed = self._parse(line)
        if parsed is None:
            return
        command, method, arg = parsed
        self._reset_timeout()
        if command in self._handle_hooks or "exception" in self._handle_hooks:
            self._running = self.loop.create_task(self._guarded(method(arg)))
            self._running.add_done_callback(self._ran)
            return
        answering = self._guarded(method(arg))
        self._at_once = True
        try:
            answering.send(None)
        except StopIteration:
            return
        finally:
            self._at_once = False
        answering.close()  # aiosmtpd's code waited after all: not a session to go on with
        _log.error("%r %s waited for something outside a task; session closed", self.session.peer, command)
        self.transport.close()

    def _parse(self, line: bytes | object) -> tuple[str, Callable[[str | None], Awaitable[None]], str | None] | None:
        """The command, its method and its argument; None when the line is
        answered already (too long, bad syntax, unknown...)."""
        session = self.session
        if line is _TOO_LONG:
            self._write("500 Command line too long")
            return None
        assert isinstance(line, bytes)
        if _log.isEnabledFor(logging.DEBUG):
            sanitized_log(_log.debug, "_handle_client readline: %r", line)
        line = line.rstrip(b"\r\n")
        if _log.isEnabledFor(logging.INFO):
            sanitized_log(_log.info, "%r >> %r", session.peer, line)
        if not line:
            self._write("500 Error: bad syntax")
            return None
        command_bytes, _, arg_bytes = line.partition(b" ")
        try:
            command = command_bytes.upper().decode(encoding="ascii")
        except UnicodeDecodeError:
            self._write("500 Error: bad syntax")
            return None
        if not arg_bytes:
            arg = None
        else:
            arg_bytes = arg_bytes.strip()
            if self.enable_SMTPUTF8:
                arg = str(arg_bytes, encoding="utf-8", errors="surrogateescape")
            else:
                try:
                    arg = str(arg_bytes, encoding="ascii", errors="strict")
                except UnicodeDecodeError:
                    self._write("500 Error: strict ASCII mode")
                    return None
        max_size = self.command_size_limits[command] if session.extended_smtp else self.command_size_limit
        if len(line) > max_size:
            self._write("500 Command line too long")
            return None
        if not self._tls_handshake_okay and command != "QUIT":
            self._write("554 Command refused due to lack of security")
            return None
        method = self._smtp_methods.get(command)
        if method is None:
            _log.warning("%r unrecognised: %s", session.peer, command)
            self._bogus_budget -= 1
            if self._bogus_budget < 1:
                _log.warning("%r too many bogus commands", session.peer)
                self._write("502 5.5.1 Too many unrecognized commands, goodbye.")
                self.transport.close()
                return None
            self._write(f'500 Error: command "{command}" not recognized')
            return None
        return command, method, arg

    async def _guarded(self, answering: Awaitable[None]) -> None:
        """A command's method, with what aiosmtpd's loop does when it fails."""
        try:
            await answering
        except (asyncio.CancelledError, ConnectionResetError) as lost:
            # aiosmtpd's session ends here: it closes its writer and returns.
            _log.info("%r Connection lost during _handle_client()", self.session.peer)
            if self.transport is not None:
                self.transport.close()
            if isinstance(lost, asyncio.CancelledError):
                raise
        except Exception as error:
            try:
                status = await self.handle_exception(error)
            except Exception as inner_error:
                try:
                    _log.exception("%r Exception in handle_exception()", self.session.peer)
                    status = "500 Error: ({}) {}".format(inner_error.__class__.__name__, str(inner_error))
                except Exception:
                    status = "500 Error: Cannot describe error"
            await self.push(status)

    def _ran(self, task: asyncio.Task) -> None:
        self._running = None
        if not task.cancelled() and task.exception() is not None:
            _log.error("%r session failed", self.session.peer, exc_info=task.exception())
            self._eof = True
        if self.transport is None:
            return
        if self._eof:  # the command went on after the client was gone (or failed): no more
            self.transport.close()
        else:
            self._serve()

    @syntax("QUIT")
    async def smtp_QUIT(self, arg: str) -> None:
        if not self._direct:
            await super().smtp_QUIT(arg)
            return
        # aiosmtpd's, less cancelling its session task (there is none).
        if arg:
            await self.push("501 Syntax: QUIT")
            return
        status = await self._call_handler_hook("QUIT")
        await self.push("221 Bye" if status is MISSING else status)
        self.transport.close()

    # -- replies

    def _write(self, status: str | bytes) -> None:
        if isinstance(status, str):
            status = bytes(status, "utf-8" if self.enable_SMTPUTF8 else "ascii")
        self.transport.write(status + b"\r\n")
        _log.debug("%r << %r", self.session.peer, status)

    async def push(self, status: str | bytes) -> None:
        if not self._direct:
            await super().push(status)
            return
        # StreamWriter.drain's checks, without its await when nothing waits;
        # a command answered at once does not wait (_serve stops instead).
        if self._connection_lost:
            raise ConnectionResetError("Connection lost")
        self._write(status)
        if self._paused and not self._at_once:
            await self._drain_helper()

    # -- DATA

    def data_blocks(self) -> Callable[[], Awaitable[tuple[bytes, bool]]]:
        """DATA's blocks (data.read_data), once the 354 is sent."""
        if not self._direct:
            raise RuntimeError("aiosmtpd's own session reads DATA from its stream")
        self._data_tail = b"\r\n"  # the DATA line's CRLF: the first of the end's
        return self._data_block

    async def _data_block(self) -> tuple[bytes, bool]:
        """Everything the buffer holds up to the end of data (and True: the
        block ends with it), or everything there is; waits when nothing is."""
        while not self._inbox:
            self._waiting = self.loop.create_future()
            try:
                await self._waiting
            finally:
                self._waiting = None
        inbox = self._inbox
        # The end may begin in what was taken before (at most 4 octets of it).
        joined = self._data_tail + bytes(inbox[:4])
        found = joined.find(END_OF_DATA)
        if found >= 0:
            end = found + len(END_OF_DATA) - len(self._data_tail)
        else:
            found = end_of_data(inbox)
            end = found + len(END_OF_DATA) if found >= 0 else len(inbox)
        if end == len(inbox):  # the common case: all of it, one copy
            block = bytes(inbox)
            inbox.clear()
        else:
            with memoryview(inbox) as taken:
                block = bytes(taken[:end])
            del inbox[:end]
        self._data_tail = (self._data_tail + block[-4:])[-4:]
        if self._reading_paused and len(inbox) <= INBOX_LIMIT and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return block, found >= 0
