"""The SMTP sessions of a process: aiosmtpd's protocol with our DATA.

Stopping gracefully: once the service stops, a new session gets ``421`` at
once; a session in DATA gets its answer (its message is committed, or
refused, as usual); then the sessions still open get ``421`` and are
closed, and only then does the listening socket close.

DATA is read in blocks (gateway/admission/data.py). A message stays in
memory while it is small; once it passes ``large_message_bytes`` its
header section stays in memory and its body goes to the handler's
``open_body`` (the blob store, sealed, as it arrives), so a 25 MB message
is never held whole. Large messages in transfer at once are bounded per
process (``Sessions.large``): a MAIL FROM that declares a large SIZE when
every place is taken gets 452; DATA that grows large without having
declared it waits up to LARGE_WAIT_SECONDS for a place, then gets 421
(the client retries later, and nothing of it is kept)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Iterable, Protocol

from aiosmtpd.smtp import MISSING, syntax

from gateway.admission.data import DataState, Unstuffer, read_data, stream_blocks
from gateway.admission.direct import DirectSMTP

SHUTTING_DOWN = b"421 4.3.2 Service shutting down, try again later\r\n"
LARGE_WAIT_SECONDS = 30.0
TOO_MANY_LARGE_NOW = "452 4.3.1 Too many large messages in transfer, try again later"
TOO_MANY_LARGE_WAITED = "421 4.3.2 Too many large messages in transfer, try again later"
# The header section of a large message must end within this much: it is
# kept in memory (and read whole by sender authentication).
MAX_HEADER_SECTION = 1024 * 1024
HEADER_TOO_LARGE = "552 5.3.4 Header section too large"
_SIZE = re.compile(r"SIZE=(\d{1,20})", re.IGNORECASE)


def declared_size(words: Iterable[str]) -> int:
    """The SIZE a MAIL FROM declares (RFC 1870) among its words, or 0."""
    for word in words:
        found = _SIZE.fullmatch(word)
        if found:
            return int(found.group(1))
    return 0


class Body(Protocol):
    """Where a large message's body goes (inbound/bodies.BodyWriter)."""

    size: int

    async def write(self, piece: bytes) -> None: ...

    async def close(self) -> None: ...

    async def abort(self) -> None: ...


class LargeSlots:
    """Places for large messages in transfer at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._freed = asyncio.Event()

    def try_take(self) -> bool:
        if self.in_use < self.limit:
            self.in_use += 1
            return True
        return False

    async def take(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.try_take():
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), deadline - time.monotonic())
            except TimeoutError:
                return self.try_take()
        return True

    def give_back(self) -> None:
        self.in_use -= 1
        self._freed.set()


class Sessions:
    """The SMTP sessions of this process, how many are in DATA, and the
    places for large messages."""

    def __init__(self, large_sessions: int = 8) -> None:
        self.open: set[asyncio.Transport] = set()
        self.in_data = 0
        self.closing = False
        self.large = LargeSlots(large_sessions)
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def drain(self, deadline: float) -> int:
        """Refuse new sessions, wait (until ``deadline``, a monotonic time)
        for those in DATA to be answered, then say 421 to the rest and close
        them; how many were still in DATA at the deadline."""
        self.closing = True
        while self.in_data and time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        for transport in list(self.open):
            if not transport.is_closing():
                transport.write(SHUTTING_DOWN)
                transport.close()
        return self.in_data


class _TooManyLarge(Exception):
    pass


class _HeaderTooLarge(Exception):
    pass


class DrainingSMTP(DirectSMTP):
    """aiosmtpd's SMTP (built once a class: protocol.py; driven by the
    transport's callbacks: direct.py), counted in ``sessions``, reading
    DATA in blocks."""

    def __init__(self, handler, *, sessions: Sessions, large_message_bytes: int | None = None, **options) -> None:
        self._sessions = sessions
        self._large_bytes = large_message_bytes
        self._holds_large = False
        super().__init__(handler, **options)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._sessions.open.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sessions.open.discard(self.transport)
        self._give_back_large()
        super().connection_lost(exc)

    def _set_post_data_state(self) -> None:
        # After DATA's answer, RSET, HELO and EHLO: a new transaction.
        super()._set_post_data_state()
        self._give_back_large()

    def _give_back_large(self) -> None:
        if self._holds_large:
            self._holds_large = False
            self._sessions.large.give_back()

    def _spools(self) -> bool:
        return bool(self._large_bytes) and hasattr(self.event_handler, "open_body")

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        # A client that says how large its message is hears at once when no
        # place for it is free (RFC 1870), rather than after sending it.
        if (self._spools() and declared_size((arg or "").split()) > self._large_bytes
                and self.session is not None and self.session.host_name and not self._holds_large):
            if not self._sessions.large.try_take():
                await self.push(TOO_MANY_LARGE_NOW)
                return
            self._holds_large = True
        await super().smtp_MAIL(arg)
        if self.envelope is not None and not self.envelope.mail_from:
            self._give_back_large()  # MAIL was refused

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, read in blocks (gateway/admission/data.py)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        self._sessions.in_data += 1
        envelope = self.envelope
        collected = _Collected(self)
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            try:
                blocks = self.data_blocks() if self._direct else stream_blocks(self._reader)
                state = await read_data(blocks, Unstuffer(self.data_size_limit), collected.write)
            except _TooManyLarge:
                await self.push(TOO_MANY_LARGE_WAITED)
                self.transport.close()
                return
            if state is DataState.NOMINAL and collected.header_too_large:
                state = None
            if state is not DataState.NOMINAL:
                self._set_post_data_state()
                await self.push(state.value if state is not None else HEADER_TOO_LARGE)
                return
            if collected.body is not None:
                # Stored for good before the handler decides; it marks the
                # body taken once a committed row names it.
                await collected.body.close()
                envelope.body = collected.body
            envelope.original_content = envelope.content = collected.head()
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push("250 OK" if status is MISSING else status)
        finally:
            self._sessions.in_data -= 1
            self._sessions.changed()
            await collected.forget()


class Refuse(asyncio.Protocol):
    """A session that arrives while the service stops: 421, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(SHUTTING_DOWN)  # type: ignore[attr-defined]
        transport.close()


def _header_end(data: bytes) -> int:
    """Where the header section of ``data`` ends (after its empty line), or -1."""
    if data.startswith(b"\r\n"):
        return 2
    end = data.find(b"\r\n\r\n")
    return end + 4 if end >= 0 else -1


class _Collected:
    """What DATA has brought so far: in memory while the message is small;
    past the large threshold, the header section in memory and the body in
    the handler's body writer (``body``), once a place for it is had."""

    def __init__(self, protocol: DrainingSMTP) -> None:
        self.protocol = protocol
        self.pieces: list[bytes] = []
        self.size = 0
        self.header = b""
        self.body: Body | None = None
        self.header_too_large = False
        self._large = protocol._large_bytes if protocol._spools() else None

    async def write(self, piece: bytes) -> None:
        if self.body is not None:
            await self.body.write(piece)
            return
        if self.header_too_large:
            return
        self.pieces.append(piece)
        self.size += len(piece)
        if self._large is not None and self.size > self._large:
            await self._go_large()

    async def _go_large(self) -> None:
        data = b"".join(self.pieces)
        end = _header_end(data[:MAX_HEADER_SECTION + 4])
        if end < 0:
            if self.size > MAX_HEADER_SECTION:
                self.header_too_large = True
                self.pieces = []
            else:
                self.pieces = [data]
            return
        protocol = self.protocol
        if not protocol._holds_large:
            if not await protocol._sessions.large.take(LARGE_WAIT_SECONDS):
                self.pieces = []
                raise _TooManyLarge()
            protocol._holds_large = True
        self.header, self.pieces = data[:end], []
        self.body = await protocol.event_handler.open_body(protocol.session, protocol.envelope)
        await self.body.write(data[end:])

    def head(self) -> bytes:
        """The message (small), or the header section of a large one."""
        if self.body is not None:
            return self.header
        data = b"".join(self.pieces)
        self.pieces = []
        return data

    async def forget(self) -> None:
        """A body no committed row names (refused, failed, cut off) goes."""
        self.pieces = []
        body, self.body = self.body, None
        if body is not None and not getattr(body, "taken", False):
            await body.abort()
