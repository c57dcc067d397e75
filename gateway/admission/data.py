"""Reading DATA in blocks instead of lines.

aiosmtpd reads DATA a line at a time (an await, a list append and a check
per line: 1,800 of them for a 140 KB message with a PDF) and keeps every
line until the end, then joins them: the message twice in memory, and the
largest single cost of admitting a message with an attachment. This takes
what the session has received in blocks (up to the end of data:
direct.py's session buffer, or aiosmtpd's stream), undoes the
dot-stuffing and checks the line lengths with bytes methods, and hands the
message on in pieces, so the caller decides where it goes (memory or a
spool file) as it arrives.

It answers exactly as aiosmtpd 1.4.6 does (tests/test_smtp_data.py holds
the two side by side): the data ends only at CRLF "." CRLF (a bare LF
before or after the dot does not end it: CVE-2024-27305, SMTP smuggling);
a line of more than 1,001 octets with its CRLF makes the answer "500 Line
too long", more than the size limit "552 Too much mail data", each only
once the client has sent the end (RFC 5321 4.2.5), and nothing of such a
message is kept; a line that starts with a dot loses that dot.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Awaitable, Callable

LINE_LIMIT = 1001  # octets with the CRLF: 1,000 (RFC 5321 4.5.3.1.6) and a transparency dot
# Every end of DATA ends with this: reading up to it never reads past the end.
_DOT_LINE = b".\r\n"
_END = b"\r\n.\r\n"


class DataState(enum.Enum):
    NOMINAL = "nominal"
    TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
    TOO_MUCH = "552 Error: Too much mail data"


class Unstuffer:
    """The message's bytes from DATA's raw stream, fed in any pieces.

    ``feed(block, last)`` returns the message bytes that ``block``
    completes (whole lines, dot-stuffing undone); ``last`` says the block
    ends at the end of DATA (its final ``.\\r\\n`` is not the message's).
    """

    def __init__(self, size_limit: int | None, line_limit: int = LINE_LIMIT) -> None:
        self.size_limit = size_limit
        self.line_limit = line_limit
        self.state = DataState.NOMINAL
        self.size = 0  # octets as sent, dots and CRLFs included (as aiosmtpd counts)
        self._carry = b""  # the start of a line not yet complete

    def feed(self, block: bytes, last: bool = False) -> bytes:
        text = self._carry + block if self._carry else block
        if last:
            text = text[:-len(_DOT_LINE)]
            end = len(text)
        else:
            end = text.rfind(b"\r\n") + 2  # 1 when there is none
            if end == 1:
                end = 0
        lines, self._carry = text[:end], text[end:]
        self.size += len(lines)
        if self.state is DataState.NOMINAL:
            if len(self._carry) >= self.line_limit or self._too_long(lines, self.line_limit):
                self.state = DataState.TOO_LONG
            elif self.size_limit and self.size > self.size_limit:
                self.state = DataState.TOO_MUCH
        if last and self.size_limit and self.size > self.size_limit and self.state is DataState.NOMINAL:
            self.state = DataState.TOO_MUCH
        if self.state is not DataState.NOMINAL:
            # Nothing of such a message is kept; the line being read is
            # kept only as far as the end of DATA could be in it.
            if len(self._carry) > self.line_limit:
                self._carry = self._carry[-4:]
            return b""
        if lines.startswith(b"."):
            lines = lines[1:]
        if dot_line(lines) < 0:
            return lines
        return lines.replace(b"\r\n.", b"\r\n")

    @staticmethod
    def _too_long(lines: bytes, limit: int) -> bool:
        """Whether a line of ``lines`` (whole lines) is longer than ``limit``
        with its CRLF. Each look finds the last CRLF within ``limit`` of the
        start of a line: every line before it is short enough, and the next
        starts after it; none means this one is too long. So a block is
        looked over about once a ``limit``, not once a line."""
        start, size = 0, len(lines)
        while size - start > limit:
            end = lines.rfind(b"\r\n", start, start + limit)
            if end < 0:
                return True
            start = end + 2
        return False


# Dots looked at one by one before bytes.find's own search takes over: a
# text with dots in most lines (or a client sending dots by the megabyte)
# would cost a Python step a dot.
DOTS_ONE_BY_ONE = 32


def dot_line(text: bytes | bytearray, start: int = 0) -> int:
    """Where the first CRLF "." at or after ``start`` in ``text`` begins (a
    line that starts with a dot: dot-stuffed, or the end of data), or -1:
    ``text.find(CRLF ".", start)``.

    Found through the dots, one octet looked for at a time (memchr): the
    bulk of a message is base64, which has none. bytes.find of CRLF "." or
    of the end of data looks at nearly every octet in Python's own loop, as
    base64 is full of the octets of those needles' filter (~0.5 ns an
    octet here: 0.17 ms for a 140 KB message's searches, before and in
    the unstuffing's replace)."""
    dot = text.find(b".", start + 2)
    for _ in range(DOTS_ONE_BY_ONE):
        if dot < 0:
            return -1
        if text[dot - 1] == 10 and text[dot - 2] == 13:
            return dot - 2
        dot = text.find(b".", dot + 1)
    # Every dot before this one was looked at.
    return text.find(b"\r\n.", dot - 2) if dot >= 0 else -1


def end_of_data(text: bytes | bytearray) -> int:
    """``text.find(CRLF "." CRLF)``, through dot_line (a few of its lines
    starting with a dot, then bytes.find)."""
    line = dot_line(text)
    for _ in range(DOTS_ONE_BY_ONE):
        if line < 0 or text[line + 3:line + 5] == b"\r\n":
            return line
        line = dot_line(text, line + 1)
    return text.find(b"\r\n.\r\n", line) if line >= 0 else -1


Blocks = Callable[[], Awaitable[tuple[bytes, bool]]]


def stream_blocks(reader: asyncio.StreamReader) -> Blocks:
    """DATA's blocks from a stream (aiosmtpd's own session): each up to a
    ".\\r\\n" (every end of DATA is one), or whatever is buffered when there
    is none, so it never reads past the end: a client that sends its next
    command at once loses nothing. A block is (its bytes, whether it ends
    DATA)."""
    tail = b"\r\n"  # the DATA command's own line ended just before

    async def next_block() -> tuple[bytes, bool]:
        nonlocal tail
        try:
            block = await reader.readuntil(_DOT_LINE)
            last = (tail + block)[-len(_END):] == _END
        except asyncio.LimitOverrunError as error:
            block = await reader.read(error.consumed)
            last = False
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("the connection closed during DATA") from None
        tail = (tail + block)[-2:]
        return block, last

    return next_block


async def read_data(
    next_block: Blocks, unstuffer: Unstuffer, write: Callable[[bytes], Awaitable[None] | None]
) -> DataState:
    """Read DATA up to its end, a block at a time from ``next_block``,
    handing the message's bytes to ``write`` as they come; the state to
    answer with (NOMINAL: the message is whole)."""
    while True:
        block, last = await next_block()
        piece = unstuffer.feed(block, last)
        if piece:
            pending = write(piece)
            if pending is not None:
                await pending
        if last:
            return unstuffer.state
