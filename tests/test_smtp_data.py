"""DATA read in blocks (gateway/admission/data.py) answers and keeps
exactly what aiosmtpd's own line-by-line DATA does: the same bytes sent to
both, in the same pieces, over real sockets."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiosmtpd.smtp import SMTP

from gateway.admission.data import DataState, Unstuffer, dot_line, end_of_data
from gateway.admission.draining import DrainingSMTP, Sessions

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

LIMIT = 4096


class Keep:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.contents.append(envelope.original_content)
        return "250 kept"


async def _talk(protocol_class, pieces: list[bytes], **options) -> tuple[list[bytes], list[bytes]]:
    """Send the SMTP dialogue's DATA part in ``pieces``; the replies after
    the 354 and what the handler got."""
    handler = Keep()
    extra = {"sessions": Sessions()} if protocol_class is DrainingSMTP else {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol_class(handler, data_size_limit=LIMIT, hostname="test.localhost", **extra, **options),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(30):  # a server waiting for more than it was sent fails the test, not hangs it
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readline()
            for command in (b"EHLO client\r\n", b"MAIL FROM:<a@b.example>\r\n", b"RCPT TO:<c@d.example>\r\n"):
                writer.write(command)
                while (await reader.readline())[3:4] == b"-":
                    pass
            writer.write(b"DATA\r\n")
            assert (await reader.readline()).startswith(b"354")
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
            writer.write(b"NOOP\r\n")  # whatever came after the end is read as commands
            replies = []
            while not replies or not replies[-1].startswith(b"250 2.0.0 OK") and not replies[-1].startswith(b"250 OK"):
                line = await reader.readline()
                if not line:
                    break
                replies.append(line.rstrip(b"\r\n"))
        writer.close()
        return replies, handler.contents
    finally:
        server.close()
        await server.wait_closed()


def _cases() -> dict[str, list[bytes]]:
    body = b"".join(b"line %d of the message\r\n" % i for i in range(300))
    b64 = b"".join(b"QUJD" * 19 + b"\r\n" for _ in range(2000))
    return {
        "plain": [b"Subject: hi\r\n\r\n" + body + b".\r\n"],
        "empty": [b".\r\n"],
        "one line": [b"X\r\n.\r\n"],
        "one line, then the end alone": [b"X\r\n", b".\r\n"],
        "dot-stuffed": [b"Subject: dots\r\n\r\n..leading\r\n...two\r\n.\r\n"],
        "dot-stuffed first line": [b"..first\r\nnext\r\n.\r\n"],
        "a byte at a time": [bytes([c]) for c in b"Subject: slow\r\n\r\n..a\r\nb.\r\nc\r\n.\r\n"],
        "end split over pieces": [b"Subject: x\r\n\r\nbody\r", b"\n.", b"\r", b"\n"],
        "bare LF before the dot (smuggling)": [b"Subject: x\r\n\r\nA\n.\r\nMAIL FROM:<e@f>\r\n\r\n.\r\n"],
        "bare LF after the dot": [b"Subject: x\r\n\r\nA\r\n.\nB\r\n.\r\n"],
        "bare CR in lines": [b"Subject: x\r\n\r\nA\rB\r\n\r.\r\n.\r\n"],
        "sentences ending in dots": [b"Subject: x\r\n\r\n" + b"Ends here.\r\n" * 50 + b".\r\n"],
        "line of 1001 octets": [b"Subject: x\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n"],
        "line of 1001 octets, stuffed": [b"Subject: x\r\n\r\n." + b"a" * 998 + b"\r\n.\r\n"],
        "line of 1002 octets": [b"Subject: x\r\n\r\n" + b"a" * 1000 + b"\r\n.\r\n"],
        "very long line in pieces": [b"Subject: x\r\n\r\n"] + [b"a" * 700] * 10 + [b"\r\nmore\r\n.\r\n"],
        "over the size limit": [b"Subject: x\r\n\r\n" + body * 2 + b".\r\n"],
        "exactly the size limit": [b"S: x\r\n\r\n" + b"y" * (LIMIT - 10) + b"\r\n.\r\n"],
        "one over the size limit": [b"S: x\r\n\r\n" + b"y" * (LIMIT - 9) + b"\r\n.\r\n"],
        "big base64 in one piece": [b"Subject: x\r\n\r\n" + b64[:78 * 40] + b".\r\n"],
        "dots in words, a stuffed line after base64": [b"Subject: a.b. c.\r\n\r\n" + b64[:78 * 40] + b"..x.\r\ny.\r\n.\r\n"],
        "the end in a piece of its own after dots in words": [b"S: a.b.\r\n\r\nx.\r\n", b".\r\n"],
    }


# {}: the gateway's session (direct.py, DATA from its buffer); a timeout of
# its own makes it aiosmtpd's stream session (DATA from the StreamReader).
@pytest.mark.parametrize("options", [{}, {"timeout": 300}], ids=["direct", "stream"])
@pytest.mark.parametrize("case", list(_cases()))
async def test_blocks_answer_and_keep_what_lines_do(case, options):
    pieces = _cases()[case]
    expected = await _talk(SMTP, pieces, **options)
    assert await _talk(DrainingSMTP, pieces, **options) == expected


async def test_a_large_message_is_read_in_a_few_blocks_and_kept_whole():
    limit = 1 << 22
    body = b"".join(b"QUJD" * 19 + b"\r\n" for _ in range(20_000))  # 1.6 MB of base64 lines
    handler = Keep()
    server = await asyncio.get_running_loop().create_server(
        lambda: DrainingSMTP(handler, sessions=Sessions(), data_size_limit=limit, hostname="t"), "127.0.0.1", 0)
    async with asyncio.timeout(60):  # a server waiting for more than it was sent fails the test, not hangs it
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        await reader.readline()
        for command in (b"HELO c\r\n", b"MAIL FROM:<a@b.example>\r\n", b"RCPT TO:<c@d.example>\r\n", b"DATA\r\n"):
            writer.write(command)
            await reader.readline()
        writer.write(b"Subject: big\r\n\r\n" + body + b".\r\nQUIT\r\n")
        assert (await reader.readline()).startswith(b"250 kept")
        assert (await reader.readline()).startswith(b"221")
    writer.close()
    server.close()
    assert handler.contents == [b"Subject: big\r\n\r\n" + body]


def test_the_unstuffer_undoes_dots_only_at_line_starts():
    unstuffer = Unstuffer(None)
    assert unstuffer.feed(b"..a\r\nb..\r\n.") == b".a\r\nb..\r\n"
    assert unstuffer.feed(b".c\r\n") == b".c\r\n"
    assert unstuffer.feed(b".\r\n", last=True) == b""
    assert unstuffer.state is DataState.NOMINAL


def test_line_starting_dots_and_the_end_of_data_are_found_where_bytes_find_finds_them():
    # Through the dots (data.dot_line), not bytes.find's own search: the
    # same answers, in texts made of the octets that matter.
    pick = random.Random(29)
    for _ in range(20_000):
        # Up to 120 octets: past the dots looked at one by one, too.
        text = bytes(pick.choice(b"\r\n.a") for _ in range(pick.randrange(0, 120)))
        start = pick.randrange(0, len(text) + 1)
        assert dot_line(text, start) == text.find(b"\r\n.", start), (text, start)
        assert end_of_data(bytearray(text)) == text.find(b"\r\n.\r\n"), text
