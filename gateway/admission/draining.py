"""Stopping SMTP gracefully: once the service stops, a new session gets
``421`` at once; a session in DATA gets its answer (its message is
committed, or refused, as usual); then the sessions still open get ``421``
and are closed, and only then does the listening socket close."""

from __future__ import annotations

import asyncio
import time

from aiosmtpd.smtp import SMTP

SHUTTING_DOWN = b"421 4.3.2 Service shutting down, try again later\r\n"


class Sessions:
    """The SMTP sessions of this process, and how many are in DATA."""

    def __init__(self) -> None:
        self.open: set[asyncio.Transport] = set()
        self.in_data = 0
        self.closing = False
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


class DrainingSMTP(SMTP):
    """aiosmtpd's SMTP, counted in ``sessions``."""

    def __init__(self, handler, *, sessions: Sessions, **options) -> None:
        super().__init__(handler, **options)
        self._sessions = sessions

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._sessions.open.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sessions.open.discard(self.transport)
        super().connection_lost(exc)

    async def smtp_DATA(self, arg: str) -> None:
        self._sessions.in_data += 1
        try:
            await super().smtp_DATA(arg)
        finally:
            self._sessions.in_data -= 1
            self._sessions.changed()


class Refuse(asyncio.Protocol):
    """A session that arrives while the service stops: 421, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(SHUTTING_DOWN)  # type: ignore[attr-defined]
        transport.close()
