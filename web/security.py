"""Headers every page sends. The link token is in the URL, so no referrer
ever leaves; no page may be framed; no inline script runs; nothing a
client reads is kept in a cache. A response that sets a header itself (the
pay page's policy with Stripe's origins) keeps its own."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BASE = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}
# What Stripe.js needs, per Stripe's security guide (its CSP section): its
# script, which loads parts of itself from *.js.stripe.com; its frames
# (the Payment Element's fields, wallets and Link from js.stripe.com and
# *.js.stripe.com, 3-D Secure from hooks.stripe.com); its API; its images.
# Only the pay page sends these.
_STRIPE = {
    "script-src": "https://js.stripe.com https://*.js.stripe.com",
    "frame-src": "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com",
    "connect-src": "https://api.stripe.com",
    "img-src": "https://*.stripe.com",
}


def csp(*, stripe: bool = False, https: bool = False) -> str:
    directives = dict(_BASE)
    if stripe:
        for name, sources in _STRIPE.items():
            directives[name] = f"{directives[name]} {sources}" if name in directives else sources
    policy = "; ".join(f"{name} {sources}" for name, sources in directives.items())
    return policy + ("; upgrade-insecure-requests" if https else "")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        defaults = [
            (b"content-security-policy", csp(https=https).encode()),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if https:
            defaults.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.defaults = defaults
        self.private = [*defaults, (b"cache-control", b"no-store")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The style sheet is the same for everyone: let it be cached.
        wanted = self.defaults if scope["path"].startswith("/static/") else self.private

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in wanted if k not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)
