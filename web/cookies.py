"""The Set-Cookie header of our secret cookies (CSRF, session).

Written out here rather than through Starlette's ``set_cookie``, whose
http.cookies machinery cost more than all the rest of answering a kept
unlock page (web/formcache.py). Our values are URL-safe base64 made by us:
nothing to quote, and anything else is refused.
"""

from __future__ import annotations

import re

from starlette.responses import Response

_VALUE = re.compile(r"^[A-Za-z0-9_-]+$")


def set_secret_cookie(response: Response, name: str, value: str, *, secure: bool) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site sends
    it), the whole site, and Secure under https."""
    if not _VALUE.match(value):
        raise ValueError("a secret cookie's value is URL-safe base64")
    _add(response, f"{name}={value}", secure)


def clear_secret_cookie(response: Response, name: str, *, secure: bool) -> None:
    """Tells the browser to drop the cookie now."""
    _add(response, f'{name}=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0', secure)


def _add(response: Response, start: str, secure: bool) -> None:
    header = f"{start}; HttpOnly; Path=/; SameSite=strict" + ("; Secure" if secure else "")
    response.raw_headers.append((b"set-cookie", header.encode("ascii")))
