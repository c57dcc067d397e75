"""One log line per request: method, path, status, duration.

Link tokens open a client's message (with the password), so a log must not
collect them: the segment after /r/ and /staff/replies/ (and anything token-like) is replaced, and the
query string is never logged. (uvicorn's own access log is off: it would log both.)
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("clienttrack.web.access")

# The segment after any /r/ (the client's link) or /staff/replies/ (a
# reply's link in the staff member's notice), and any run long enough to be
# a token pasted somewhere else in a path (a 256-bit token is 43 characters).
_TOKEN = re.compile(r"(?<=/r/)[^/]+|(?<=/staff/replies/)[^/]+|[A-Za-z0-9_-]{32,}")


def redact(path: str) -> str:
    return _TOKEN.sub("<redacted>", path)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            log.info(
                "%s %s %d %.1fms",
                scope["method"], redact(scope["path"]), status, (time.perf_counter() - started) * 1000,
            )
