"""Server-side sessions for an unlocked request.

The browser holds only a random session id in an HttpOnly, SameSite=Strict
cookie (Secure under https). The database holds the id's SHA-256 and the
request's data key sealed under the master key, with the id hash as
associated data, so neither a stolen table nor a swapped row opens anything.
The password is never kept. A session ends after ``idle`` without a request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from gateway import vault
from gateway.core.models import ClientSession, PaymentRequest
from web.cookies import clear_secret_cookie, set_secret_cookie

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
# last_seen_at is written at most this often: one write per page would
# double the database work of every download and page view.
TOUCH_EVERY = timedelta(seconds=60)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def _aad(id_hash: str) -> bytes:
    return b"session-key:" + id_hash.encode("ascii")


class Sessions:
    def __init__(self, master_key: bytes, *, idle: timedelta, secure: bool, cookie: str = "ct_session") -> None:
        self._master_key = master_key
        self.idle = idle
        self.secure = secure
        # The __Host- prefix makes the browser refuse the cookie unless it is
        # Secure, host-only and for the whole site: https only. (The staff's
        # reply page keeps its sessions under a cookie of its own.)
        self.cookie = f"__Host-{cookie}" if secure else cookie

    def has_cookie(self, request: Request) -> bool:
        """Whether this browser brings a session id (it may have unlocked)."""
        return self._cookie_id(request) is not None

    def _cookie_id(self, request: Request) -> str | None:
        value = request.cookies.get(self.cookie, "")
        return value if _SESSION_ID.match(value) else None

    async def start(self, request: Request, payment_request: PaymentRequest, data_key: bytes,
                    now: datetime) -> str:
        """A new session (and a new id, whatever the browser had before)."""
        old = self._cookie_id(request)
        stale = ClientSession.filter(last_seen_at__lt=now - self.idle)
        await stale.delete()
        if old is not None:
            await ClientSession.filter(id_hash=_hash(old)).delete()
        session_id = secrets.token_urlsafe(32)
        id_hash = _hash(session_id)
        await ClientSession.create(
            id_hash=id_hash,
            request=payment_request,
            sealed_key=vault.seal_with_master(self._master_key, data_key, _aad(id_hash)),
            created_at=now,
            last_seen_at=now,
        )
        return session_id

    async def data_key(self, request: Request, payment_request: PaymentRequest, now: datetime) -> bytes | None:
        """The data key if this browser unlocked ``payment_request`` and
        has not been idle too long; else None."""
        session_id = self._cookie_id(request)
        if session_id is None:
            return None
        id_hash = _hash(session_id)
        session = await ClientSession.get_or_none(id_hash=id_hash)
        if session is None or session.request_id != payment_request.id:
            return None
        if now - session.last_seen_at >= self.idle:
            await session.delete()
            return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await ClientSession.filter(id_hash=id_hash).update(last_seen_at=now)
        try:
            return vault.open_with_master(self._master_key, session.sealed_key, _aad(id_hash))
        except vault.TamperedError:
            return None

    async def end(self, request: Request) -> None:
        session_id = self._cookie_id(request)
        if session_id is not None:
            await ClientSession.filter(id_hash=_hash(session_id)).delete()

    def set_cookie(self, response: Response, session_id: str) -> None:
        # No Max-Age: the cookie goes when the browser closes; the server
        # ends the session sooner when idle.
        set_secret_cookie(response, self.cookie, session_id, secure=self.secure)

    def clear_cookie(self, response: Response) -> None:
        clear_secret_cookie(response, self.cookie, secure=self.secure)
