"""Signed-in staff: a server-side session per browser.

The same cookie rules as the client's side (web/sessions.py): the browser
holds a random id in an HttpOnly, SameSite=Strict cookie (``__Host-`` and
Secure under https); the database holds its SHA-256. A session ends after
IDLE without a request and ABSOLUTE after sign-in whatever happens, and at
once when the member is removed or their level drops to none: the level
is read with the session on every request, so a lowered level also takes
effect on the next click.

Every form of a signed-in page carries one CSRF token: an HMAC of the
session id under the gateway's CSRF key (web/csrf.py), so it fits this
session only; a POST must also come from our own site.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway.core.models import Firm, Level, Staff, StaffSession
from gateway.vault.signin import SESSION_ABSOLUTE, SESSION_IDLE
from web.cookies import clear_secret_cookie, set_secret_cookie
from web.csrf import FIELD, Csrf

# last_seen_at is written at most this often, not on every page.
TOUCH_EVERY = timedelta(seconds=60)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


@dataclass
class SignedIn:
    """The member behind this request, as the database says now."""

    id_hash: str
    staff: Staff
    firm: Firm
    csrf_token: str
    flash: dict

    @property
    def level(self) -> Level:
        return self.staff.level

    @property
    def email(self) -> str:
        return self.staff.email


class StaffSessions:
    def __init__(self, csrf: Csrf, *, secure: bool, idle: timedelta = SESSION_IDLE,
                 absolute: timedelta = SESSION_ABSOLUTE) -> None:
        self.csrf = csrf
        self.secure = secure
        self.idle = idle
        self.absolute = absolute
        self.cookie = "__Host-ct_staff" if secure else "ct_staff"

    def _cookie_id(self, request: Request) -> str | None:
        value = request.cookies.get(self.cookie, "")
        return value if _SESSION_ID.match(value) else None

    async def start(self, request: Request, staff: Staff, now: datetime) -> str:
        """A new session and a new id, whatever the browser had before."""
        await StaffSession.filter(last_seen_at__lt=now - self.idle).delete()
        old = self._cookie_id(request)
        if old is not None:
            await StaffSession.filter(id_hash=_hash(old)).delete()
        session_id = secrets.token_urlsafe(32)
        await StaffSession.create(id_hash=_hash(session_id), staff_id=staff.id, firm_id=staff.firm_id,
                                  created_at=now, last_seen_at=now)
        return session_id

    async def current(self, request: Request, now: datetime) -> SignedIn | None:
        session_id = self._cookie_id(request)
        if session_id is None:
            return None
        id_hash = _hash(session_id)
        session = await StaffSession.filter(id_hash=id_hash).select_related("staff", "firm").first()
        if session is None:
            return None
        if now - session.last_seen_at >= self.idle or now - session.created_at >= self.absolute:
            await StaffSession.filter(id_hash=id_hash).delete()
            return None
        if session.staff.level is Level.NONE:
            await StaffSession.filter(staff_id=session.staff_id).delete()
            return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await StaffSession.filter(id_hash=id_hash).update(last_seen_at=now)
        return SignedIn(id_hash, session.staff, session.firm, self.csrf.token(session_id, "staff"),
                        session.flash or {})

    def csrf_ok(self, request: Request, signed_in: SignedIn, form: FormData) -> bool:
        sent = form.get(FIELD)
        return (isinstance(sent, str) and hmac.compare_digest(sent, signed_in.csrf_token)
                and self.csrf.same_site(request))

    async def say(self, signed_in: SignedIn, ok: bool, text: str) -> None:
        """What the next page shows once (after an action's redirect)."""
        await StaffSession.filter(id_hash=signed_in.id_hash).update(flash={"ok": ok, "text": text})

    async def heard(self, signed_in: SignedIn) -> None:
        if signed_in.flash:
            await StaffSession.filter(id_hash=signed_in.id_hash).update(flash={})

    async def end(self, request: Request) -> None:
        session_id = self._cookie_id(request)
        if session_id is not None:
            await StaffSession.filter(id_hash=_hash(session_id)).delete()

    def set_cookie(self, response: Response, session_id: str) -> None:
        # No Max-Age: gone when the browser closes; the server ends it sooner.
        set_secret_cookie(response, self.cookie, session_id, secure=self.secure)

    def clear_cookie(self, response: Response) -> None:
        clear_secret_cookie(response, self.cookie, secure=self.secure)

