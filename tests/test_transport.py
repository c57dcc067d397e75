"""gateway.outbound transports against real parts: a real aiosmtpd server in the test's
own event loop (loop.create_server, not the threaded Controller), real TLS
with a certificate made here, a real Maildir on disk. No mocks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import errno
import ipaddress
import os
import socket
import ssl
import stat
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.outbound import maildir
from gateway.outbound.maildir import MaildirTransport
from gateway.outbound.outbox import transport_for
from gateway.outbound.relay import RelayTransport
from gateway.outbound.transport import DeliveryFailure, PermanentFailure, TemporaryFailure, Transport, retry_delay

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

USER = "clerk@firm.example"
PASSWORD = "s3cr/et:p@ss%word+ü"  # needs percent-encoding in a URL
QUSER, QPASS = quote(USER, safe=""), quote(PASSWORD, safe="")

MESSAGE = (
    b"From: Firm <billing@firm.example>\r\n"
    b"To: Client <client@example.com>\r\n"
    b"Subject: Payment request\r\n"
    b"Message-ID: <1@firm.example>\r\n"
    b"\r\n"
    b"Please pay here.\r\n"
    b".a line starting with a dot survives dot-stuffing\r\n"
    b"\r\n"
    b"Regards\r\n"
)


# --------------------------------------------------------------------------
# fixtures and helpers


def _make_cert(directory: Path, common_name: str = "relay.test") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / f"{common_name}.crt", directory / f"{common_name}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@pytest.fixture(scope="session")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    return _make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server_tls(cert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*map(str, cert))
    return ctx


class Recorder:
    """aiosmtpd handler that records what reached it; optional canned refusals."""

    def __init__(self, *, mail_reply: str | None = None, rcpt_reply: str | None = None,
                 data_reply: str | None = None) -> None:
        self.mail_reply, self.rcpt_reply, self.data_reply = mail_reply, rcpt_reply, data_reply
        self.delivered: list[dict] = []
        self.auth_attempts: list[tuple[str, bytes, bytes]] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.delivered.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "content": envelope.content,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "login": getattr(session.auth_data, "login", None),
                "ehlo": session.host_name,
            }
        )
        return "250 2.0.0 queued as TEST123"

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        self.auth_attempts.append((mechanism, auth_data.login, auth_data.password))
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@contextlib.asynccontextmanager
async def smtp_server(handler, *, ssl_context: ssl.SSLContext | None = None, **smtp_kwargs):
    """A real aiosmtpd server on 127.0.0.1:<ephemeral> in the running loop."""
    loop = asyncio.get_running_loop()
    smtp_kwargs.setdefault("hostname", "relay.test")  # no getfqdn() per connection
    server = await loop.create_server(
        lambda: SMTP(handler, ident="test relay", **smtp_kwargs), "127.0.0.1", 0, ssl=ssl_context
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_secret_free(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    for form in (PASSWORD, QPASS, "s3cr"):
        assert form not in text


def relay(url: str) -> RelayTransport:
    return RelayTransport(url, hostname="gateway.test")


# --------------------------------------------------------------------------
# Maildir


async def test_maildir_writes_the_return_path_then_the_exact_bytes_into_new(tmp_path):
    outbox = tmp_path / "outbox"
    t = MaildirTransport(outbox)
    assert isinstance(t, Transport)
    name = await t.deliver(MESSAGE, "billing@firm.example", "client@example.com")
    await t.close()

    assert name.endswith(".eml") and "/" not in name
    assert sorted(p.name for p in outbox.iterdir()) == ["cur", "new", "tmp"]
    files = list((outbox / "new").iterdir())
    assert [f.name for f in files] == [name]
    # As a delivering MTA does: the envelope sender on top, then byte for byte.
    assert files[0].read_bytes() == b"Return-Path: <billing@firm.example>\r\n" + MESSAGE
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert list((outbox / "tmp").iterdir()) == []
    assert list((outbox / "cur").iterdir()) == []


async def test_maildir_50_concurrent_deliveries_get_unique_names(tmp_path):
    t = MaildirTransport(tmp_path / "outbox")
    messages = [MESSAGE + f"message {i}\r\n".encode() for i in range(50)]
    names = await asyncio.gather(*(t.deliver(m, "a@firm.example", "b@example.com") for m in messages))

    assert len(set(names)) == 50
    new = tmp_path / "outbox" / "new"
    assert sorted(p.name for p in new.iterdir()) == sorted(names)
    written = [(new / n).read_bytes().removeprefix(b"Return-Path: <a@firm.example>\r\n") for n in names]
    assert written == messages  # each name is its own message
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []


async def test_maildir_disk_problem_is_temporary_and_leaves_nothing(tmp_path):
    outbox = tmp_path / "outbox"
    t = MaildirTransport(outbox)
    await t.deliver(MESSAGE, "a@firm.example", "b@example.com")
    # Make the rename into new/ fail (works as root too, unlike chmod).
    (outbox / "new").rename(outbox / "new.saved")
    (outbox / "new").write_bytes(b"not a directory")
    with pytest.raises(TemporaryFailure, match="maildir"):
        await t.deliver(MESSAGE, "a@firm.example", "b@example.com")
    assert list((outbox / "tmp").iterdir()) == []  # no half-delivered leftovers


def _spied_file_calls(monkeypatch, fail_fsync_of: str = "") -> list[tuple[str, ...]]:
    """The Maildir's fsyncs (by the path of what was flushed) and renames, in
    order, through the real calls; an fsync of a path holding
    ``fail_fsync_of`` fails as a disk's would (EIO)."""
    calls: list[tuple[str, ...]] = []
    real_fsync, real_rename = maildir.os.fsync, maildir.os.rename

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        calls.append(("fsync", path))
        if fail_fsync_of and fail_fsync_of in path:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    def rename(source, target):
        calls.append(("rename", str(source), str(target)))
        real_rename(source, target)

    monkeypatch.setattr(maildir.os, "fsync", fsync)
    monkeypatch.setattr(maildir.os, "rename", rename)
    return calls


def test_a_maildir_batch_flushes_each_file_before_it_is_in_new_and_new_after_them_all(tmp_path, monkeypatch):
    # Power lost at any moment leaves in new/ only whole messages, and once
    # the batch returns they stay there (the outbox marks them sent then).
    outbox = tmp_path / "outbox"
    t = MaildirTransport(outbox)
    t.write_many([])  # the folders made
    calls = _spied_file_calls(monkeypatch)
    notes = t.write_many([(MESSAGE, "a@firm.example", f"b{n}@example.com", f"outbound-{n}") for n in range(3)])
    assert notes == [f"outbound-{n}.eml" for n in range(3)]
    renames = [i for i, call in enumerate(calls) if call[0] == "rename"]
    for i in renames:
        assert ("fsync", calls[i][1]) in calls[:i]  # its bytes flushed before it is in new/
    assert calls[renames[-1] + 1:] == [("fsync", str(outbox / "new"))]


def test_a_maildir_batch_whose_flush_fails_for_one_file_delivers_the_others(tmp_path, monkeypatch):
    outbox = tmp_path / "outbox"
    t = MaildirTransport(outbox)
    _spied_file_calls(monkeypatch, fail_fsync_of="outbound-1.eml")
    notes = t.write_many([(MESSAGE, "a@firm.example", f"b{n}@example.com", f"outbound-{n}") for n in range(3)])
    assert notes[0] == "outbound-0.eml" and notes[2] == "outbound-2.eml"
    assert isinstance(notes[1], TemporaryFailure) and "Input/output error" in str(notes[1])
    assert sorted(p.name for p in (outbox / "new").iterdir()) == ["outbound-0.eml", "outbound-2.eml"]
    assert list((outbox / "tmp").iterdir()) == []  # no half-delivered leftovers


# --------------------------------------------------------------------------
# relay: success paths


async def test_relay_plain_delivery():
    handler = Recorder()
    async with smtp_server(handler) as port:
        t = relay(f"smtp://127.0.0.1:{port}")
        note = await t.deliver(MESSAGE, "billing@firm.example", "client@example.com")
        await t.close()

    assert note == "250 2.0.0 queued as TEST123"
    [got] = handler.delivered
    assert got["mail_from"] == "billing@firm.example"
    assert got["rcpt_tos"] == ["client@example.com"]
    assert got["content"] == MESSAGE
    assert got["tls"] is False and got["login"] is None
    assert got["ehlo"] == "gateway.test"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("trust", ["verify=false", "cafile"])
async def test_relay_starttls_with_auth(cert, server_tls, mechanism, trust):
    handler = Recorder()
    other = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    query = "verify=false" if trust == "verify=false" else f"cafile={quote(str(cert[0]))}"
    async with smtp_server(
        handler,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=handler.authenticator,
        auth_required=True,
        auth_require_tls=True,
        auth_exclude_mechanism=other,
    ) as port:
        t = relay(f"smtp://{QUSER}:{QPASS}@127.0.0.1:{port}?{query}")
        note = await t.deliver(MESSAGE, "billing@firm.example", "client@example.com")

    assert note.startswith("250 ")
    assert [a[0] for a in handler.auth_attempts] == [mechanism]
    [got] = handler.delivered
    assert got["tls"] is True
    assert got["login"] == USER.encode()
    assert got["content"] == MESSAGE


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_relay_smtps_implicit_tls_with_auth(cert, server_tls):
    handler = Recorder()
    # aiosmtpd does not know the socket is already TLS (it only tracks its own
    # STARTTLS), hence auth_require_tls=False; the handler checks TLS itself.
    async with smtp_server(
        handler, ssl_context=server_tls, authenticator=handler.authenticator,
        auth_required=True, auth_require_tls=False,
    ) as port:
        t = relay(f"smtps://{QUSER}:{QPASS}@127.0.0.1:{port}?cafile={quote(str(cert[0]))}")
        note = await t.deliver(MESSAGE, "billing@firm.example", "client@example.com")

    assert note == "250 2.0.0 queued as TEST123"
    [got] = handler.delivered
    assert got["tls"] is True and got["login"] == USER.encode() and got["content"] == MESSAGE


# --------------------------------------------------------------------------
# relay: failures


async def test_wrong_password_is_permanent_and_does_not_leak(server_tls):
    handler = Recorder()
    wrong = "s3cr-wrong-Pa55"
    async with smtp_server(
        handler, tls_context=server_tls, authenticator=handler.authenticator,
        auth_required=True, auth_require_tls=True,
    ) as port:
        t = relay(f"smtp://{QUSER}:{quote(wrong, safe='')}@127.0.0.1:{port}?verify=false")
        with pytest.raises(PermanentFailure) as info:
            await t.deliver(MESSAGE, "billing@firm.example", "client@example.com")

    assert info.value.code == 535
    assert "535" in str(info.value)
    text = "".join(traceback.format_exception(info.value)) + repr(t)
    assert wrong not in text and quote(wrong, safe="") not in text
    assert handler.auth_attempts and handler.delivered == []


@pytest.mark.parametrize(
    "refusal, expected",
    [
        ({"rcpt_reply": "451 4.3.0 try again later"}, TemporaryFailure),
        ({"rcpt_reply": "550 5.1.1 no such user"}, PermanentFailure),
        ({"mail_reply": "452 4.3.1 insufficient storage"}, TemporaryFailure),
        ({"mail_reply": "553 5.7.1 sender not allowed"}, PermanentFailure),
        ({"data_reply": "451 4.7.1 greylisted"}, TemporaryFailure),
        ({"data_reply": "554 5.6.0 content rejected"}, PermanentFailure),
    ],
)
async def test_smtp_replies_are_classified(refusal, expected):
    handler = Recorder(**refusal)
    reply = next(iter(refusal.values()))
    async with smtp_server(handler) as port:
        with pytest.raises(DeliveryFailure) as info:
            await relay(f"smtp://127.0.0.1:{port}").deliver(MESSAGE, "a@firm.example", "b@example.com")
    assert type(info.value) is expected
    assert info.value.code == int(reply[:3])
    assert reply in str(info.value)


class RudeAfterAccepting(Recorder):
    """Accepts the message, then answers QUIT with an error and hangs up."""

    async def handle_QUIT(self, server, session, envelope):
        server.transport.abort()
        return "554 5.0.0 oops"


async def test_trouble_after_the_message_was_accepted_is_still_success():
    # Turning this into a failure would make the queue send the message twice.
    handler = RudeAfterAccepting()
    async with smtp_server(handler) as port:
        note = await relay(f"smtp://127.0.0.1:{port}").deliver(MESSAGE, "a@firm.example", "b@example.com")
    assert note == "250 2.0.0 queued as TEST123"
    assert len(handler.delivered) == 1


ECHO_PASSWORD = "Ascii-Pa55word!"  # an SMTP reply line can only carry ASCII


class EchoingAuthenticator(Recorder):
    """A badly behaved relay that repeats the credentials in its 535 reply:
    as typed and as the base64 AUTH PLAIN blob it received."""

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        self.auth_attempts.append((mechanism, auth_data.login, auth_data.password))
        blob = base64.b64encode(b"\0" + auth_data.login + b"\0" + auth_data.password).decode()
        return AuthResult(
            success=False, handled=False,
            message=f"535 5.7.8 bad password {auth_data.password.decode()} ({blob}) for {auth_data.login.decode()}",
        )


async def test_password_echoed_by_the_server_is_scrubbed(server_tls):
    handler = EchoingAuthenticator()
    async with smtp_server(
        handler, tls_context=server_tls, authenticator=handler.authenticator, auth_require_tls=True,
        auth_exclude_mechanism=["LOGIN"],
    ) as port:
        with pytest.raises(PermanentFailure) as info:
            await relay(f"smtp://{QUSER}:{quote(ECHO_PASSWORD, safe='')}@127.0.0.1:{port}?verify=false").deliver(
                MESSAGE, "a@firm.example", "b@example.com"
            )
    assert handler.auth_attempts == [("PLAIN", USER.encode(), ECHO_PASSWORD.encode())]  # it did see it
    assert info.value.code == 535
    assert "bad password *** (***) for clerk@firm.example" in str(info.value)
    text = "".join(traceback.format_exception(info.value))
    assert ECHO_PASSWORD not in text and "Pa55" not in text


async def test_connection_refused_is_temporary():
    with pytest.raises(TemporaryFailure):
        await relay(f"smtp://127.0.0.1:{closed_port()}").deliver(MESSAGE, "a@firm.example", "b@example.com")


async def test_silent_server_times_out_temporarily():
    hold = asyncio.Event()

    async def never_greet(reader, writer):
        await hold.wait()
        writer.close()

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TemporaryFailure, match="timed out"):
            await relay(f"smtp://127.0.0.1:{port}?timeout=0.2").deliver(MESSAGE, "a@firm.example", "b@example.com")
    finally:
        hold.set()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
async def test_untrusted_certificate_is_permanent(tmp_path, server_tls, scheme):
    other_ca, _ = _make_cert(tmp_path, "someone-else")  # trust a different CA
    handler = Recorder()
    kwargs = {"ssl_context": server_tls} if scheme == "smtps" else {"tls_context": server_tls}
    async with smtp_server(handler, **kwargs) as port:
        with pytest.raises(PermanentFailure, match="certificate"):
            await relay(f"{scheme}://127.0.0.1:{port}?cafile={quote(str(other_ca))}").deliver(
                MESSAGE, "a@firm.example", "b@example.com"
            )
    assert handler.delivered == []


async def test_smtps_to_a_plain_server_is_a_temporary_tls_failure():
    async with smtp_server(Recorder()) as port:
        with pytest.raises(TemporaryFailure):
            await relay(f"smtps://127.0.0.1:{port}?verify=false&timeout=1").deliver(
                MESSAGE, "a@firm.example", "b@example.com"
            )


async def test_starttls_require_without_offer_is_permanent():
    handler = Recorder()
    async with smtp_server(handler) as port:
        with pytest.raises(PermanentFailure, match="STARTTLS"):
            await relay(f"smtp://127.0.0.1:{port}?starttls=require").deliver(MESSAGE, "a@firm.example", "b@example.com")
    assert handler.delivered == []


async def test_credentials_are_never_sent_without_tls():
    handler = Recorder()
    # A server that happily takes AUTH in clear text (as a downgrade attacker would).
    async with smtp_server(handler, authenticator=handler.authenticator, auth_require_tls=False) as port:
        with pytest.raises(PermanentFailure) as info:
            await relay(f"smtp://{QUSER}:{QPASS}@127.0.0.1:{port}").deliver(MESSAGE, "a@firm.example", "b@example.com")
    assert handler.auth_attempts == [] and handler.delivered == []
    assert_secret_free(info.value)


# --------------------------------------------------------------------------
# envelope injection


@pytest.mark.parametrize(
    "mail_from, rcpt_to",
    [
        ("a@firm.example", "b@example.com\r\nRCPT TO:<evil@example.net>"),
        ("a@firm.example", "b@example.com\n"),
        ("a@firm.example\rDATA", "b@example.com"),
        ("a@firm.example", "b@exa\x00mple.com"),
        ("a@firm.example", ""),
    ],
)
async def test_crlf_in_envelope_is_refused_before_any_connection(tmp_path, mail_from, rcpt_to):
    # A closed port: had the transport tried to connect it would be a
    # TemporaryFailure, so PermanentFailure proves it refused up front.
    with pytest.raises(PermanentFailure):
        await relay(f"smtp://127.0.0.1:{closed_port()}").deliver(MESSAGE, mail_from, rcpt_to)
    with pytest.raises(PermanentFailure):
        await MaildirTransport(tmp_path / "outbox").deliver(MESSAGE, mail_from, rcpt_to)
    assert not (tmp_path / "outbox" / "new").exists() or not any((tmp_path / "outbox" / "new").iterdir())


@pytest.mark.parametrize(
    "rcpt_to",
    ["b@example.com> NOTIFY=NEVER", "b@example.com, evil@example.net", "Client <b@example.com>", "b @example.com"],
)
async def test_addresses_that_aiosmtplib_would_rewrite_or_refuse_are_refused(rcpt_to):
    with pytest.raises(PermanentFailure):
        await relay(f"smtp://127.0.0.1:{closed_port()}").deliver(MESSAGE, "a@firm.example", rcpt_to)


async def test_null_sender_and_utf8_recipient():
    handler = Recorder()
    async with smtp_server(handler, enable_SMTPUTF8=True) as port:
        t = relay(f"smtp://127.0.0.1:{port}")
        await t.deliver(MESSAGE, "", "b@example.com")  # bounce-style <> sender
        await t.deliver(MESSAGE, "a@firm.example", "jürgen@example.de")
    assert [(d["mail_from"], d["rcpt_tos"]) for d in handler.delivered] == [
        ("<>", ["b@example.com"]),
        ("a@firm.example", ["jürgen@example.de"]),
    ]


async def test_utf8_recipient_without_smtputf8_is_permanent():
    handler = Recorder()
    async with smtp_server(handler) as port:
        with pytest.raises(PermanentFailure, match="SMTPUTF8"):
            await relay(f"smtp://127.0.0.1:{port}").deliver(MESSAGE, "a@firm.example", "jürgen@example.de")
    assert handler.delivered == []


# --------------------------------------------------------------------------
# configuration and secrets


def test_repr_hides_password_and_decodes_credentials():
    t = relay(f"smtp://{QUSER}:{QPASS}@mail.example.net:587?starttls=require&timeout=30")
    assert repr(t) == (
        "RelayTransport('smtp://clerk%40firm.example:***@mail.example.net:587?starttls=require&timeout=30',"
        " hostname='gateway.test')"
    )
    assert str(t) == repr(t)
    assert PASSWORD not in repr(vars(t)) and QPASS not in repr(vars(t))
    assert t.username == USER
    assert (t.host, t.port, t.implicit_tls, t.require_starttls, t.timeout) == ("mail.example.net", 587, False, True, 30.0)


def test_url_defaults():
    plain = relay("smtp://relay.example.net")
    assert (plain.port, plain.require_starttls, plain.verify, plain.username) == (25, False, True, None)
    assert repr(plain) == "RelayTransport('smtp://relay.example.net:25', hostname='gateway.test')"
    tls = relay("smtps://u:p@relay.example.net")
    assert (tls.port, tls.implicit_tls) == (465, True)


@pytest.mark.parametrize(
    "url",
    [
        "http://u:hunter2secret@relay.example.net",
        "smtp://u:hunter2secret@relay.example.net?verfy=false",
        "smtp://u:hunter2secret/x@relay.example.net",  # unencoded '/' in the password
        "smtp://u:hunter2secret@relay.example.net:99999",
        "smtp://u:hunter2secret@relay.example.net:port",
        "smtps://u:hunter2secret@relay.example.net?starttls=require",
        "smtp://u:hunter2secret@relay.example.net?timeout=-1",
        "smtp://u:hunter2secret@relay.example.net?verify=false&cafile=/etc/hosts",
        "smtp://u:hunter2secret@relay.example.net?cafile=/nonexistent/ca.pem",
        "smtp://:hunter2secret@relay.example.net",
    ],
)
def test_bad_urls_are_rejected_without_echoing_the_password(url):
    with pytest.raises(ValueError) as info:
        relay(url)
    text = "".join(traceback.format_exception(info.value))
    assert "hunter2" not in text


def test_transport_for(tmp_path):
    maildir = transport_for(None, tmp_path / "outbox", "gateway.test")
    assert isinstance(maildir, MaildirTransport) and maildir.path == tmp_path / "outbox"
    assert isinstance(transport_for("", tmp_path, "gateway.test"), MaildirTransport)
    smtp = transport_for("smtp://relay.example.net:2525", tmp_path, "gateway.test")
    assert isinstance(smtp, RelayTransport) and smtp.hostname == "gateway.test" and smtp.port == 2525
    assert isinstance(smtp, Transport)


# --------------------------------------------------------------------------
# retry_delay


def test_retry_delay_grows_exponentially_and_is_capped():
    no_jitter = [retry_delay(n, jitter=lambda: 0.0) for n in range(1, 12)]
    assert no_jitter[:6] == [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0]
    assert all(b == min(2 * a, 6 * 3600) for a, b in zip(no_jitter, no_jitter[1:]))
    assert no_jitter[-1] == 6 * 3600
    assert retry_delay(10_000, jitter=lambda: 0.0) == 6 * 3600  # no overflow
    assert retry_delay(3, base_seconds=1.0, cap_seconds=3.0, jitter=lambda: 0.0) == 3.0


def test_retry_delay_jitter_is_at_most_ten_percent_and_never_exceeds_cap():
    assert retry_delay(1, jitter=lambda: 1.0) == pytest.approx(54.0)
    assert retry_delay(2, jitter=lambda: 0.5) == pytest.approx(114.0)
    assert retry_delay(50, jitter=lambda: 0.999) <= 6 * 3600
    for attempt in range(1, 20):
        d = retry_delay(attempt)  # real random.random
        ideal = min(60.0 * 2 ** (attempt - 1), 6 * 3600)
        assert 0.9 * ideal <= d <= ideal
    with pytest.raises(ValueError):
        retry_delay(0)
