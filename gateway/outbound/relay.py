"""The relay transport: each message handed to the SMTP smarthost named by
``CLIENTTRACK_RELAY_URL`` (``smtp://[user[:password]@]host[:port][?options]``
or ``smtps://...``; options ``starttls=require``, ``cafile=``,
``verify=false`` for tests only, ``timeout=``), one connection per delivery.
With credentials STARTTLS is always required. 4xx, lost connections and TLS
hiccups are temporary; 5xx, untrusted certificates and unusable envelopes
are permanent. The relay password never appears in a repr, an exception
or a chained exception. The URL's grammar and the failure table in full:
docs/outbound-transports.md.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import ssl
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import aiosmtplib
import aiosmtplib.email

from gateway.outbound.transport import (
    CONTROL_CHARACTERS, DeliveryFailure, PermanentFailure, TemporaryFailure, check_envelope,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
_QUIT_TIMEOUT = 5.0


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
    """Deliver through an SMTP relay; see docs/outbound-transports.md for the URL."""

    def __init__(self, url: str, *, hostname: str) -> None:
        if not hostname or CONTROL_CHARACTERS.search(hostname) or any(c.isspace() for c in hostname):
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

    async def deliver(self, message: bytes, mail_from: str, rcpt_to: str, *, delivery_id: str | None = None) -> str:
        check_envelope(message, mail_from, rcpt_to)
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
            return cls(text, code=exc.code, step=step)
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
