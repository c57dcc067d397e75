"""Work in flight in this process that will queue mail soon (a queue
runner's message: a request, a reply, a command), so the outbox can wait
for it a moment and send its mail in the same batch.

A batch of mail costs the same whatever it holds: the write-ahead log's
flush before it (outbound/outbox.py flush_commits), the claim and the
mark-sent on the database's thread, and for the Maildir the listing of
cur/ and the fsync of new/. Under load a process's queue runners finish
one after another 50-100 ms apart, and the outbox sent what was due the
moment it was woken: a batch held the mail of one or two requests. Mail
that nothing in flight will join is never held: a lone request's mail
goes at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class InFlight:
    """How many pieces of work of this process (its event loop's) are under
    way, and a wait for them to end."""

    def __init__(self) -> None:
        self.count = 0
        # Set when the last piece of work ends; a waiter is woken once.
        self._idle: asyncio.Future[None] | None = None

    @contextmanager
    def working(self) -> Iterator[None]:
        """Around a piece of work that will queue mail when it succeeds."""
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1
            if not self.count and self._idle is not None and not self._idle.done():
                self._idle.set_result(None)

    async def ended(self, most: float) -> None:
        """Return once no work is under way, or after ``most`` seconds,
        whichever is first; at once if none is. Work that starts while this
        waits is waited for too, within the same ``most``: under a steady
        load that is the bound, not an end of the work."""
        if not self.count:
            return
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._idle), most)
        except TimeoutError:
            pass
