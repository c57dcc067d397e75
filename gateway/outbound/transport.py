"""How one rendered message reaches its destination: the interface the
outbox delivers through, and what its outcomes mean to the queue.

A :class:`Transport` takes a message (bytes, CRLF line endings) and its
envelope. A returned string is a short delivery note for the log;
:class:`TemporaryFailure` means "try again later" (see :func:`retry_delay`);
:class:`PermanentFailure` means "give up and tell someone". Two transports:
maildir.py (the default) and relay.py (CLIENTTRACK_RELAY_URL). Which
failure is which, and why: docs/outbound-transports.md.
"""

from __future__ import annotations

import random
import re
from typing import Callable, Protocol, runtime_checkable


class DeliveryFailure(Exception):
    """Base of the two outcomes below; ``code`` is the SMTP reply code, if
    any, and ``step`` the command it answered ("RCPT TO": the recipient's
    address was refused, the failure that makes a request bounced)."""

    def __init__(self, message: str, *, code: int | None = None, step: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.step = step


class TemporaryFailure(DeliveryFailure):
    """Try again later: 4xx, connection refused or lost, timeout, TLS hiccup, disk full."""


class PermanentFailure(DeliveryFailure):
    """Give up: 5xx, auth rejected, untrusted certificate, unusable envelope."""


@runtime_checkable
class Transport(Protocol):
    async def deliver(self, message: bytes, mail_from: str, rcpt_to: str, *, delivery_id: str | None = None) -> str:
        """Deliver one message; return a short note ("250 2.0.0 queued as X", a file name).
        ``delivery_id`` names the delivery for a transport that can make a
        repeat a no-op (the Maildir); a relay gets the message's own
        Message-ID, made when it was queued, so repeats carry the same one."""
        ...

    async def close(self) -> None: ...


# C0 controls (CR, LF, NUL, TAB, ...) and DEL: never legitimate in an envelope
# address, and CR/LF would end the SMTP command line.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def check_envelope(message: bytes, mail_from: str, rcpt_to: str) -> None:
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise TypeError(f"message must be bytes, not {type(message).__name__}")
    for label, address in (("sender", mail_from), ("recipient", rcpt_to)):
        if not isinstance(address, str):
            raise TypeError(f"{label} address must be str, not {type(address).__name__}")
        if CONTROL_CHARACTERS.search(address):
            raise PermanentFailure(
                f"{label} address {address!r} contains control characters (CR/LF?); refused"
            )
    if not rcpt_to.strip():
        raise PermanentFailure("recipient address is empty")


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
