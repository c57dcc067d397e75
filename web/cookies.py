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
    header = f"{name}={value}; HttpOnly; Path=/; SameSite=strict" + ("; Secure" if secure else "")
    response.raw_headers.append((b"set-cookie", header.encode("ascii")))
