"""gateway/admission/protocol.py builds aiosmtpd's SMTP protocol without
looking the class over on each connection: the object it builds must be
the one aiosmtpd's own __init__ builds, and it must answer every command
as aiosmtpd does."""

from __future__ import annotations

import asyncio
import weakref

import aiosmtpd
import pytest
from aiosmtpd.smtp import SMTP, _AuthMechAttr

from gateway.admission import direct, protocol
from gateway.admission.draining import DrainingSMTP, Sessions
from gateway.admission.protocol import QuickSMTP

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

OPTIONS = {"data_size_limit": 4096, "enable_SMTPUTF8": True, "decode_data": False,
           "hostname": "test.localhost", "ident": "test gateway"}


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("no"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return f"250 kept {len(envelope.original_content)} from {envelope.mail_from} options {envelope.mail_options}"


class WithMore(Handler):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-X-EXTRA", responses[-1]]

    async def auth_CUSTOM(self, server, args):
        return None


class Waiting(Handler):
    """Its RCPT and DATA wait on the event loop, as the gateway's look-ups
    and commits do, under asyncio.timeout, as asyncpg's pool does (which
    works only inside a task: direct.py runs hooks in one)."""

    async def handle_RCPT(self, server, session, envelope, address, options):
        async with asyncio.timeout(10):
            await asyncio.sleep(0)
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server, session, envelope):
        async with asyncio.timeout(10):
            await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def _normal(value, owner):
    """A value of a protocol object's state, with per-object parts made
    comparable: the object itself, bound methods, readers and futures."""
    if value is owner:
        return "<self>"
    if isinstance(value, _AuthMechAttr):
        return ("auth", _normal(value.method, owner), value.is_builtin)
    if hasattr(value, "__self__") and hasattr(value, "__func__"):
        return ("method", value.__func__, _normal(value.__self__, owner))
    if isinstance(value, weakref.ref):
        return ("weakref", _normal(value(), owner))
    if isinstance(value, asyncio.StreamReader):
        return ("reader", value._limit, value._loop, bytes(value._buffer), value._eof)
    if isinstance(value, asyncio.Future):
        return ("future", value.done())
    if isinstance(value, dict):
        return {key: _normal(item, owner) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_normal(item, owner) for item in value)
    return value


def _state(obj) -> dict:
    return {name: _normal(value, obj) for name, value in vars(obj).items()}


@pytest.mark.parametrize("handler_class", [Handler, WithMore])
@pytest.mark.parametrize("options", [OPTIONS, {}, {"hostname": "h", "data_size_limit": None}])
async def test_the_object_is_the_one_aiosmtpd_builds(handler_class, options):
    handler = handler_class()
    quick, theirs = QuickSMTP(handler, **options), SMTP(handler, **options)
    assert _state(quick) == _state(theirs)
    assert SMTP.command_size_limits == {}  # both cleared the (class-wide) limits


async def test_the_handler_s_own_attributes_are_found_each_time():
    handler = Handler()
    first = QuickSMTP(handler, **OPTIONS)

    async def handle_NOOP(server, session, envelope, arg):
        return "250 noted"

    handler.handle_NOOP = handle_NOOP
    second = QuickSMTP(handler, **OPTIONS)
    assert "NOOP" not in first._handle_hooks and second._handle_hooks["NOOP"] is handle_NOOP
    assert _state(second) == _state(SMTP(handler, **OPTIONS))


async def test_the_names_are_kept_with_their_short_names_and_found_once():
    # smtp_HELO is the command HELO, handle_EHLO the hook EHLO, auth_CUSTOM
    # the mechanism CUSTOM: kept beside the names, not renamed on every
    # connection, and the objects built from them are aiosmtpd's.
    handler = WithMore()
    protocol._NAMES.clear()
    first = QuickSMTP(handler, **OPTIONS)
    kept = dict(protocol._NAMES)
    second = QuickSMTP(handler, **OPTIONS)
    assert protocol._NAMES == kept
    pairs = {pair for names in kept.values() for pair in names}
    assert {("smtp_HELO", "HELO"), ("handle_EHLO", "EHLO"), ("auth_CUSTOM", "CUSTOM")} <= pairs
    assert _state(first) == _state(second) == _state(SMTP(handler, **OPTIONS))


async def test_other_options_or_versions_take_aiosmtpd_s_own_init(monkeypatch):
    handler = Handler()
    built = QuickSMTP(handler, timeout=10, **OPTIONS)
    assert built._timeout_duration == 10
    monkeypatch.setattr(aiosmtpd, "__version__", "9.9")
    assert _state(QuickSMTP(handler, **OPTIONS)) == _state(SMTP(handler, **OPTIONS))


def test_getaddr_answers_as_aiosmtpd_s():
    smtp_class_getaddr = SMTP._getaddr
    for arg in ["<a@b.example>", "a@b.example", "<a@b.example> SIZE=100", " <a@b.example>", "<>", "",
                "<@route:a@b.example>", "<a b@c.example>", '<"a b"@c.example>', "<a@[127.0.0.1]>",
                "a", "<a@b.example", "<<a@b.example>>", "<a@b.example> BODY=8BITMIME SMTPUTF8",
                "<é@b.example>", "<a@b.example>junk", "(comment) <a@b.example>", "\udcff@x", "<>x",
                "<" + "x" * 70 + "@b.example>", None]:
        for limit in (0, 64):
            assert QuickSMTP._getaddr(_Limits(limit), arg) == smtp_class_getaddr(_Limits(limit), arg), arg
    assert protocol._address("<" + "x" * 70 + "@b.example>", 64) == (None, None)


class _Limits:
    def __init__(self, limit: int) -> None:
        self.local_part_limit = limit


# Every command aiosmtpd knows, right and wrong, in one session (and a few
# sessions with other orders): each reply must be aiosmtpd's.
DIALOGUES = [
    [b"NOOP", b"MAIL FROM:<a@b.example>", b"DATA", b"HELP", b"HELP MAIL", b"HELP NOSUCH", b"VRFY",
     b"VRFY <a@b.example>", b"EXPN x", b"HELO", b"HELO client", b"EHLO", b"EHLO client", b"ehlo client",
     b"AUTH PLAIN", b"STARTTLS", b"MAIL", b"MAIL TO:<a@b.example>", b"MAIL FROM:", b"MAIL FROM:<a@b",
     b"MAIL FROM:<a@b.example> SIZE=99999", b"MAIL FROM:<a@b.example> NOSUCH=1", b"MAIL FROM:<a@b.example> BODY=9BIT",
     b"MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME SMTPUTF8", b"MAIL FROM:<c@d.example>", b"RCPT",
     b"RCPT FROM:<x@y.example>", b"RCPT TO:<no@y.example>", b"RCPT TO:<x@y.example> NOTIFY=NEVER",
     b"RCPT TO:x@y.example", b"RCPT TO:<x@y.example>", b"DATA now", b"DATA",
     b"Subject: hi\r\n\r\nbody\r\n..dot\r\n.", b"RSET x", b"RSET", b"DATA", b"BOGUS", b"", b"NOOP x",
     b"MAIL FROM:<" + b"a" * 600 + b"@b.example>", b"\xff\xfe", b"QUIT now", b"QUIT"],
    [b"HELO a", b"MAIL FROM:<>", b"RCPT TO:<x@y.example>", b"DATA", b".", b"MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8",
     b"EHLO b", b"MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8",
     b"RCPT TO:<x@y.example>", b"DATA", b"\xc3\xa9\r\n.", b"QUIT"],
    [b"EHLO a", b"MAIL FROM: <a@b.example>", b"RCPT TO: <x@y.example>", b"RSET", b"RCPT TO:<x@y.example>",
     b"HELO b", b"MAIL FROM:<a@b.example>", b"MAIL FROM:<a@b.example>", b"QUIT"],
    # Lines over the 1,001-octet limit, lines ended by a bare LF, and
    # commands sent together (pipelining), DATA's end and the next commands
    # in one piece.
    [b"NOOP " + b"x" * 3000, b"HELO a", b"NOOP\nNOOP", b"NOOP " + b"y" * 1001, b"NOOP " + b"z" * 995,
     b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nRCPT TO:<no@y.example>\r\nDATA",
     b"Subject: one\r\n\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nSubject: two\r\n.",
     b"QUIT\r\nNOOP"],
]


async def _replies(factory, dialogue: list[bytes]) -> list[bytes]:
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    replies = []
    try:
        async with asyncio.timeout(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
            replies.append(await reader.readline())
            for command in dialogue:
                writer.write(command + b"\r\n")
                while True:
                    line = await reader.readline()
                    replies.append(line)
                    if line[3:4] != b"-":
                        break
            replies.append(await reader.read())  # anything more, up to the close after QUIT
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return replies


@pytest.mark.parametrize("number", range(len(DIALOGUES)))
@pytest.mark.parametrize("handler_class", [Handler, WithMore, Waiting])
async def test_every_command_is_answered_as_aiosmtpd_answers_it(number, handler_class):
    dialogue = DIALOGUES[number]
    handler = handler_class()
    expected = await _replies(lambda: SMTP(handler, **OPTIONS), dialogue)
    assert b"221 Bye\r\n" in b"".join(expected)
    assert await _replies(lambda: QuickSMTP(handler, **OPTIONS), dialogue) == expected
    sessions = Sessions()
    assert await _replies(lambda: DrainingSMTP(handler, sessions=sessions, **OPTIONS), dialogue) == expected


async def _closed_after_last_command(factory, commands: int, gap: float) -> tuple[float, float]:
    """Seconds from the last command's sending, and from its reply, to the
    server closing an idle session (commands sent ``gap`` apart, each answered)."""
    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    try:
        async with asyncio.timeout(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
            await reader.readline()
            for _ in range(commands):
                await asyncio.sleep(gap)
                sent = asyncio.get_running_loop().time()
                writer.write(b"NOOP\r\n")
                assert await reader.readline() == b"250 OK\r\n"
            answered = asyncio.get_running_loop().time()
            assert await reader.read() == b""
            closed = asyncio.get_running_loop().time()
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return closed - sent, closed - answered


def _direct(handler, timeout: float, **options) -> DrainingSMTP:
    """The gateway's session, driven by the transport (direct.py), with a
    shorter idle timeout (the option itself would make it aiosmtpd's own)."""
    session = DrainingSMTP(handler, sessions=Sessions(), **options)
    assert session._direct
    session._timeout_duration = timeout
    return session


@pytest.mark.parametrize("protocol_class", [SMTP, QuickSMTP, _direct])
async def test_an_idle_session_closes_its_timeout_after_the_last_command(protocol_class):
    # Commands more often than the timeout keep the session open; then it
    # closes the timeout after the last one, as aiosmtpd's own timer does.
    # Client and server share this event loop: a stall longer than timeout -
    # gap lets the server's timer fire before the next command is read (seen
    # with 0.4 s and 0.15 s under load 8, four workers on two cores), so the
    # times are five times those, in the same proportions. The timer starts
    # when the server reads the last command, after the client sent it: the
    # close comes the whole timeout after the sending, however loaded the
    # machine (from the reply, a stall between the server's read and the
    # client's could make it look early).
    handler = Handler()
    after_sending, after_reply = await _closed_after_last_command(
        lambda: protocol_class(handler, timeout=2.0, **OPTIONS), 5, 0.75)
    assert after_sending >= 2.0 - 0.01  # (the event loop may run a timer up to its clock's resolution early)
    assert after_reply <= 7.5


class Held(Handler):
    """DATA waits until the test lets it go."""

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def handle_DATA(self, server, session, envelope):
        await self.go.wait()
        return "250 done"


async def test_a_client_sending_while_a_command_waits_is_held_back_then_answered_in_order():
    # Port 25 is open to anyone: what a session keeps unread while its
    # DATA commits is bounded (the socket stops reading), and nothing of
    # it is lost: every command is answered once the commit is done.
    handler, built = Held(), []

    def make():
        built.append(DrainingSMTP(handler, sessions=Sessions(), **OPTIONS))
        return built[-1]

    server = await asyncio.get_running_loop().create_server(make, "127.0.0.1", 0)
    flood = 100_000  # NOOPs: 600 KB, many times what a session may keep
    try:
        async with asyncio.timeout(60):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
            await reader.readline()
            writer.write(b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nSubject: x\r\n.\r\n")
            sending = asyncio.ensure_future(_send(writer, b"NOOP\r\n" * flood))
            while not (built and built[0].transport is not None and not built[0].transport.is_reading()):
                await asyncio.sleep(0.01)
            assert len(built[0]._inbox) <= direct.INBOX_LIMIT + 256 * 1024  # one read past the limit at most
            handler.go.set()
            expected = (b"250 test.localhost\r\n250 OK\r\n250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                        b"250 done\r\n" + b"250 OK\r\n" * flood)
            replies = await reader.readexactly(len(expected))
            await sending
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert replies == expected


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()
