"""Cross-site request forgery: every form carries a token, and a POST must
come from our own pages.

The browser gets a random pre-session cookie (HttpOnly, SameSite=Strict).
A form's token is an HMAC of that cookie and the form's purpose under a key
derived from the master key, so a token fits one browser and one form and
cannot be made elsewhere. A POST is refused unless its token matches, and,
when the browser says where the request came from (Sec-Fetch-Site, Origin),
unless that is our own site.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass
from hashlib import sha256
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from web.cookies import set_secret_cookie

FIELD = "csrf_token"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class FormToken:
    value: str
    new_cookie: str | None  # the pre-session value to set: the browser brought none


class Csrf:
    def __init__(self, master_key: bytes, *, base_url: str, secure: bool) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"clienttrack csrf v1").derive(
            master_key
        )
        self.base_origin = _origin(base_url)
        self.secure = secure
        self.cookie = "__Host-ct_csrf" if secure else "ct_csrf"

    def cookie_for(self, request: Request) -> tuple[str, bool]:
        """The browser's pre-session value, or a new one: (value, is_new)."""
        value = request.cookies.get(self.cookie, "")
        if _COOKIE_VALUE.match(value):
            return value, False
        return secrets.token_urlsafe(32), True

    def token(self, cookie_value: str, purpose: str) -> str:
        mac = hmac.new(self._key, f"{cookie_value}\0{purpose}".encode(), sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def set_cookie(self, response: Response, cookie_value: str) -> None:
        set_secret_cookie(response, self.cookie, cookie_value, secure=self.secure)

    def for_form(self, request: Request, purpose: str) -> FormToken:
        """The token for one of our forms in this browser's page."""
        cookie, new = self.cookie_for(request)
        return FormToken(self.token(cookie, purpose), cookie if new else None)

    def remember(self, response: Response, form_token: FormToken) -> None:
        """Sets the pre-session cookie the token was made for, if the browser had none."""
        if form_token.new_cookie is not None:
            self.set_cookie(response, form_token.new_cookie)

    def same_site(self, request: Request) -> bool:
        """False when the browser says the request came from another site."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site != "same-origin":
            return False
        origin = request.headers.get("origin")
        # Under Referrer-Policy: no-referrer, browsers send "Origin: null" on
        # our own forms: it says nothing, so Sec-Fetch-Site and the token decide.
        if origin is None or origin == "null":
            return True
        own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        return origin.lower() in (self.base_origin, own)

    def valid(self, request: Request, form: FormData, purpose: str) -> bool:
        return self.valid_value(request, form.get(FIELD), purpose)

    def valid_value(self, request: Request, sent: object, purpose: str) -> bool:
        """Whether ``sent`` is this browser's token for ``purpose`` (a form
        read without FormData: the client's reply, web/uploads.py)."""
        value = request.cookies.get(self.cookie, "")
        if not _COOKIE_VALUE.match(value) or not isinstance(sent, str):
            return False
        # As bytes: compare_digest raises TypeError on non-ASCII text (a 500).
        return self.same_site(request) and hmac.compare_digest(sent.encode(), self.token(value, purpose).encode())
