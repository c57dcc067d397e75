"""How one rendered message reaches its destination.

The durable outbound queue hands each message (bytes, CRLF line endings) plus
its envelope to a :class:`Transport` and reacts to the outcome:

* a returned string is a short delivery note for the log / audit trail;
* :class:`TemporaryFailure` means "try again later" (see :func:`retry_delay`);
* :class:`PermanentFailure` means "give up and tell someone".

Two transports exist:

:class:`MaildirTransport` (the default, used when no relay is configured)
    Writes each message into ``DATA_DIR/outbox``, a Maildir: the bytes go to
    ``tmp/``, are fsync'd, renamed into ``new/`` and the ``new/`` directory is
    fsync'd, so ``new/`` never holds half a message, even after a crash.
    The bytes are written exactly as given (no Return-Path, no Delivered-To).

:class:`RelayTransport`
    Hands the message to an SMTP smarthost named by ``CLIENTTRACK_RELAY_URL``::

        smtp://[user[:password]@]host[:port][?options]    (port 25)
        smtps://[user[:password]@]host[:port][?options]   (implicit TLS, 465)

    User and password are percent-decoded (``%40`` for ``@``, ``%2F`` for
    ``/``, ``%3A`` for ``:``, ``%25`` for ``%``; ``+`` stays a plus).
    Options:

    ``starttls=require``
        smtp:// only. Fail (permanently) if the relay does not offer
        STARTTLS. Without it STARTTLS is used whenever the relay offers it.
        **With credentials STARTTLS is always required**: the password is
        never sent over an unencrypted connection, so a stripped STARTTLS
        offer cannot leak it.
    ``cafile=/path/to/ca.pem``
        Trust only the CA certificate(s) in that file instead of the
        system store.
    ``verify=false``
        Skip certificate and host name validation. **For tests only**: the
        connection is then open to an active man in the middle, who would
        also receive the relay password.
    ``timeout=SECONDS``
        Per network operation (connect, TLS handshake, each command); default
        60.

    Unknown options are an error (a typo such as ``verfy=false`` must not be
    silently ignored).

    One connection per delivery: connect, (STARTTLS), (AUTH), MAIL, RCPT,
    DATA, QUIT. It is the simplest thing that is correct with several queue
    workers delivering at once, it never reuses a connection the relay has
    silently dropped, and a relay is rarely the bottleneck for the volume of
    an accounting firm. Nothing stays open between deliveries, so ``close()``
    has nothing to do.

Failure classification (what the queue sees):

======================================================  =================
SMTP reply 4xx at any step (greeting, EHLO, STARTTLS,   TemporaryFailure
AUTH e.g. 454, MAIL, RCPT, DATA)
connection refused/reset/lost, DNS failure, timeouts    TemporaryFailure
TLS handshake failures other than certificate checks    TemporaryFailure
SMTP reply 5xx at any step (incl. 535 auth rejected)    PermanentFailure
server certificate not trusted / wrong host name        PermanentFailure
STARTTLS required (or credentials given) but not        PermanentFailure
offered; no usable AUTH mechanism; SMTPUTF8 needed
but not offered
envelope address with CR, LF or other control chars,    PermanentFailure
or otherwise unusable on an SMTP command line
local disk errors in the Maildir (full, permissions)    TemporaryFailure
======================================================  =================

Certificate failures are permanent on purpose: retrying cannot fix them
without someone changing the relay or our configuration, and they may mean
somebody is intercepting the connection; failing loudly beats a payment
request silently waiting for hours. (Postfix makes the opposite choice and
defers; the queue can still treat ``PermanentFailure`` from a relay-level
step differently if that is ever wanted: see ``PermanentFailure.code``.)

A connection lost after the message was sent but before the relay's final
"250" is a temporary failure, so the message may arrive twice: that is
inherent to SMTP (RFC 1047) and better than losing it.

Secrets: the relay password never appears in ``repr()``, in exception
messages, or in chained exceptions (which are suppressed, their text scrubbed
and carried over into ours).
"""

from __future__ import annotations

import asyncio
import base64
import errno
import itertools
import logging
import math
import os
import random
import re
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import aiosmtplib
import aiosmtplib.email

__all__ = [
    "DeliveryFailure",
    "MaildirTransport",
    "PermanentFailure",
    "RelayTransport",
    "TemporaryFailure",
    "Transport",
    "retry_delay",
    "transport_for",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
_QUIT_TIMEOUT = 5.0


class DeliveryFailure(Exception):
    """Base of the two outcomes below; ``code`` is the SMTP reply code, if any."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(DeliveryFailure):
    """Try again later: 4xx, connection refused or lost, timeout, TLS hiccup, disk full."""


class PermanentFailure(DeliveryFailure):
    """Give up: 5xx, auth rejected, untrusted certificate, unusable envelope."""


@runtime_checkable
class Transport(Protocol):
    async def deliver(self, message: bytes, mail_from: str, rcpt_to: str) -> str:
        """Deliver one message; return a short note ("250 2.0.0 queued as X", a file name)."""
        ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------
# Envelope checks shared by both transports

# C0 controls (CR, LF, NUL, TAB, ...) and DEL: never legitimate in an envelope
# address, and CR/LF would end the SMTP command line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_envelope(message: bytes, mail_from: str, rcpt_to: str) -> None:
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise TypeError(f"message must be bytes, not {type(message).__name__}")
    for label, address in (("sender", mail_from), ("recipient", rcpt_to)):
        if not isinstance(address, str):
            raise TypeError(f"{label} address must be str, not {type(address).__name__}")
        if _CONTROL.search(address):
            raise PermanentFailure(
                f"{label} address {address!r} contains control characters (CR/LF?); refused"
            )
    if not rcpt_to.strip():
        raise PermanentFailure("recipient address is empty")


# --------------------------------------------------------------------------
# Maildir


def _maildir_host(name: str) -> str:
    # Maildir spec: '/' and ':' in the host part are written as \057 and \072.
    # Anything else odd is dropped so the name stays a plain portable file name.
    name = name.replace("/", r"\057").replace(":", r"\072")
    return re.sub(r"[^A-Za-z0-9.\-_\\]", "", name) or "localhost"


class MaildirTransport:
    """Deliver into a Maildir (``tmp/``, ``new/``, ``cur/``) at ``path``.

    Each message becomes ``new/<sec>.M<usec>P<pid>Q<n>R<random>.<host>.eml``
    (the Maildir spec's unique-name recipe, wall-clock time so names sort by
    arrival; the counter and random part keep names unique across threads,
    processes and reboots). Files are created 0600: they hold payment links.
    The return value of :meth:`deliver` is that file name.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._host = _maildir_host(socket.gethostname())
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"MaildirTransport({str(self.path)!r})"

    async def deliver(self, message: bytes, mail_from: str, rcpt_to: str) -> str:
        _check_envelope(message, mail_from, rcpt_to)
        data = bytes(message)
        try:
            return await asyncio.to_thread(self._write, data)
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
            _fsync_dir(self.path)
            _fsync_dir(self.path.parent)
        self._ready = True

    def _write(self, data: bytes) -> str:
        self._prepare()
        name = self._unique_name()
        tmp = self.path / "tmp" / name
        new = self.path / "new" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
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
        _fsync_dir(new.parent)
        return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# SMTP relay


class _Hidden:
    """Holds a secret; its repr never shows it (tracebacks with locals, debuggers)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_OPTIONS = {"starttls", "verify", "cafile", "timeout"}


class RelayTransport:
    """Deliver through an SMTP relay; see the module docstring for the URL."""

    def __init__(self, url: str, *, hostname: str) -> None:
        if not hostname or _CONTROL.search(hostname) or any(c.isspace() for c in hostname):
            raise ValueError("relay: hostname for EHLO must be a non-empty name without spaces")
        self.hostname = hostname
        self._password = _Hidden("")
        try:
            self._parse(str(url))
        except ValueError as exc:
            # Our own messages below never include the URL; anything else
            # (urllib's own errors can quote parts of it) is replaced.
            if isinstance(exc, _URLError):
                raise ValueError(str(exc)) from None
            raise ValueError("relay URL is malformed (details withheld: it may contain a password)") from None
        self._tls_context: ssl.SSLContext | None = None
        if not self.verify:
            log.warning("relay %s: certificate validation is OFF (verify=false); use this only in tests", self.safe_url)

    # -- configuration ------------------------------------------------------

    def _parse(self, url: str) -> None:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise _URLError("relay URL must start with smtp:// or smtps://")
        if parts.path not in ("", "/") or parts.fragment:
            raise _URLError("relay URL must not have a path or fragment (is a '/' in the password not written as %2F?)")
        host = parts.hostname
        if not host:
            raise _URLError("relay URL has no host name")
        port = parts.port  # may raise ValueError quoting the netloc: caught by caller
        self.scheme = scheme
        self.host = host
        self.implicit_tls = scheme == "smtps"
        self.port = port if port is not None else (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username, errors="strict") if parts.username else None
        if parts.password is not None:
            self._password = _Hidden(unquote(parts.password, errors="strict"))
        if self._password.value and not self.username:
            raise _URLError("relay URL has a password but no user name")

        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False)
        seen: dict[str, str] = {}
        for key, value in query:
            key = key.lower()
            if key not in _OPTIONS:
                raise _URLError(f"relay URL: unknown option {key!r} (known: {', '.join(sorted(_OPTIONS))})")
            if key in seen:
                raise _URLError(f"relay URL: option {key!r} given twice")
            seen[key] = value

        self.require_starttls = False
        if "starttls" in seen:
            if self.implicit_tls:
                raise _URLError("relay URL: starttls= makes no sense with smtps:// (already TLS)")
            if seen["starttls"].lower() not in ("require", "required"):
                raise _URLError("relay URL: starttls= accepts only 'require'")
            self.require_starttls = True
        if self.username and not self.implicit_tls:
            # Never send the password in clear text.
            self.require_starttls = True

        self.verify = True
        if "verify" in seen:
            v = seen["verify"].lower()
            if v not in _TRUE | _FALSE:
                raise _URLError("relay URL: verify= must be true or false")
            self.verify = v in _TRUE
        self.cafile = seen.get("cafile") or None
        if self.cafile is not None:
            if not self.verify:
                raise _URLError("relay URL: cafile= and verify=false contradict each other")
            if not os.path.isfile(self.cafile):
                raise _URLError(f"relay URL: cafile {self.cafile!r} is not a readable file")

        self.timeout = DEFAULT_TIMEOUT
        if "timeout" in seen:
            try:
                t = float(seen["timeout"])
            except ValueError:
                raise _URLError("relay URL: timeout= must be a number of seconds") from None
            if not (math.isfinite(t) and 0 < t <= 3600):
                raise _URLError("relay URL: timeout= must be between 0 and 3600 seconds")
            self.timeout = t
        self._options = seen

    @property
    def safe_url(self) -> str:
        """The URL with the password replaced by ``***``."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self._password.value:
                auth += ":***"
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "&".join(f"{k}={v}" for k, v in self._options.items())
        return f"{self.scheme}://{auth}{host}:{self.port}" + (f"?{query}" if query else "")

    def __repr__(self) -> str:
        return f"RelayTransport({self.safe_url!r}, hostname={self.hostname!r})"

    __str__ = __repr__

    def _build_tls_context(self) -> ssl.SSLContext:
        if not self.verify:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        # With cafile=, only that file is trusted (no system store).
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.cafile)

    async def _get_tls_context(self) -> ssl.SSLContext:
        if self._tls_context is None:
            # Loading the system CA store is file IO: keep it off the loop.
            self._tls_context = await asyncio.to_thread(self._build_tls_context)
        return self._tls_context

    # -- delivery -------------------------------------------------------------

    async def deliver(self, message: bytes, mail_from: str, rcpt_to: str) -> str:
        _check_envelope(message, mail_from, rcpt_to)
        data = bytes(message)
        for label, address in (("sender", mail_from), ("recipient", rcpt_to)):
            # aiosmtplib's own check (belt and braces with ours above). It also
            # quietly rewrites what it can parse ("a@b, c@d" -> "a@b",
            # "x@y> NOTIFY=NEVER" -> "x@y"): the queue must hand us a bare
            # address, so anything that would be rewritten is refused too.
            try:
                parsed = aiosmtplib.email.parse_address(address)
            except ValueError as exc:
                raise PermanentFailure(f"{label} refused before sending: {exc}") from None
            if parsed != address:
                raise PermanentFailure(f"{label} address {address!r} is not a bare address; refused")
        try:
            tls_context = await self._get_tls_context()
        except (OSError, ssl.SSLError) as exc:
            raise PermanentFailure(f"relay {self.safe_url}: cannot load TLS settings: {exc}") from None

        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            local_hostname=self.hostname,
            timeout=self.timeout,
            use_tls=self.implicit_tls,
            start_tls=None if self.implicit_tls else (True if self.require_starttls else None),
            tls_context=tls_context,
        )
        stage = "connect"
        try:
            try:
                await smtp.connect()
                if self.username is not None:
                    stage = "AUTH"
                    if smtp.get_transport_info("sslcontext") is None:  # pragma: no cover - guarded by start_tls=True
                        raise PermanentFailure(f"relay {self.safe_url}: refusing to authenticate without TLS")
                    await smtp.login(self.username, self._password.value)
                stage = "MAIL"
                mail_options = self._mail_options(smtp, data, mail_from, rcpt_to)
                response = await self._transaction(smtp, data, mail_from, rcpt_to, mail_options)
            except DeliveryFailure:
                raise
            except Exception as exc:
                failure = self._classify(exc, stage)
                if failure is None:
                    raise
                raise failure from None
            # Accepted: from here on nothing may turn this into a failure, or
            # the queue would send the message a second time.
            try:
                await smtp.quit(timeout=min(self.timeout, _QUIT_TIMEOUT))
            except Exception:
                pass
            return f"{response.code} {response.message}".strip()
        finally:
            smtp.close()

    @staticmethod
    def _mail_options(smtp: aiosmtplib.SMTP, data: bytes, mail_from: str, rcpt_to: str) -> list[str]:
        options: list[str] = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        if not data.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (mail_from.isascii() and rcpt_to.isascii()):
            if not smtp.supports_extension("smtputf8"):
                raise PermanentFailure("non-ASCII address but the relay does not offer SMTPUTF8")
            options.append("SMTPUTF8")
        return options

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, data: bytes, mail_from: str, rcpt_to: str, options: list[str]
    ) -> aiosmtplib.SMTPResponse:
        encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
        await smtp.mail(mail_from, options=options, encoding=encoding)
        await smtp.rcpt(rcpt_to, encoding=encoding)
        return await smtp.data(data)

    def _scrub(self, text: str) -> str:
        secret = self._password.value
        if not secret:
            return text
        forms = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}
        if self.username is not None:
            plain = f"\0{self.username}\0{secret}".encode()
            forms.add(base64.b64encode(plain).decode())
            forms.add(base64.b64encode(plain[1:]).decode())
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text

    def _classify(self, exc: BaseException, stage: str) -> DeliveryFailure | None:
        where = f"relay {self.safe_url}"
        cert_error = _find_cause(exc, ssl.SSLCertVerificationError)
        if cert_error is not None:
            reason = getattr(cert_error, "verify_message", None) or str(cert_error)
            return PermanentFailure(self._scrub(f"{where}: server certificate not trusted: {reason}"))
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
            exc = exc.recipients[0]
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            step = {
                aiosmtplib.SMTPSenderRefused: "MAIL FROM",
                aiosmtplib.SMTPRecipientRefused: "RCPT TO",
                aiosmtplib.SMTPDataError: "DATA",
                aiosmtplib.SMTPAuthenticationError: "AUTH",
                aiosmtplib.SMTPHeloError: "EHLO",
                aiosmtplib.SMTPConnectResponseError: "greeting",
            }.get(type(exc), stage)
            text = self._scrub(f"{where}: {step} refused: {exc.code} {exc.message}")
            cls = PermanentFailure if 500 <= exc.code <= 599 else TemporaryFailure
            return cls(text, code=exc.code)
        if isinstance(exc, aiosmtplib.SMTPNotSupported):
            return PermanentFailure(self._scrub(f"{where}: {exc.message}"))
        if isinstance(exc, (aiosmtplib.SMTPTimeoutError, asyncio.TimeoutError, TimeoutError)):
            return TemporaryFailure(self._scrub(f"{where}: timed out during {stage}: {_describe(exc)}"))
        if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError)):
            return TemporaryFailure(self._scrub(f"{where}: {stage} failed: {_describe(exc)}"))
        if isinstance(exc, aiosmtplib.SMTPException):
            # STARTTLS required but not offered, no AUTH / no usable mechanism:
            # the relay and our settings disagree; retrying will not help.
            return PermanentFailure(self._scrub(f"{where}: {stage}: {exc.message}"))
        if isinstance(exc, (ssl.SSLError, OSError)):
            return TemporaryFailure(self._scrub(f"{where}: {stage} failed: {_describe(exc)}"))
        if isinstance(exc, ValueError):
            return PermanentFailure(self._scrub(f"{where}: {stage}: {exc}"))
        return None

    async def close(self) -> None:
        return None


class _URLError(ValueError):
    """A relay URL problem described without quoting the URL."""


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({cause})"
    return text


# --------------------------------------------------------------------------


def transport_for(relay_url: str | None, outbox_dir: Path, hostname: str) -> Transport:
    """The relay if a URL is configured, else the Maildir outbox.

    ``relay_url`` may also be a ``starlette.datastructures.Secret`` (as held
    by the settings); it is only turned into text here.
    """
    if relay_url is not None and str(relay_url).strip():
        return RelayTransport(str(relay_url), hostname=hostname)
    return MaildirTransport(Path(outbox_dir))


def retry_delay(
    attempt: int,
    base_seconds: float = 60.0,
    cap_seconds: float = 6 * 3600,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first).

    ``base * 2**(attempt-1)``, capped at ``cap_seconds``, then shortened by up
    to 10% (``jitter()`` in [0, 1)) so that messages that failed together do
    not all retry together; the cap is never exceeded.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if base_seconds < 0 or cap_seconds < 0:
        raise ValueError("base_seconds and cap_seconds must not be negative")
    exponent = min(attempt - 1, 64)  # 2**64 * anything sensible is past any cap
    delay = min(cap_seconds, base_seconds * 2.0**exponent)
    j = min(max(float(jitter()), 0.0), 1.0)
    return delay * (1.0 - 0.1 * j)
