"""The payment routes of the web app.

Mounted by ``web/app.py``; they use ``request.app.state.deps`` as the
other routes do, and its payment provider ``deps.payments``.

* ``POST /stripe/webhook`` — 200 when processed, a duplicate or ignored;
  400 for a bad or stale signature or a body that is not a Stripe event
  (nothing changes); 413 when too large; 429 when an address sends more
  unverified deliveries than :data:`UNVERIFIED_BURST` and then one a
  :data:`UNVERIFIED_REFILL_SECONDS` (nothing is stored for those); 500 when
  processing failed (Stripe retries).
* ``GET /stripe/connect/refresh?t=`` — a fresh onboarding link (303 to Stripe).
* ``GET /stripe/connect/return?t=`` — back from onboarding: the firm is
  ready once Stripe says ``charges_enabled``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.core.models import Firm
from gateway.payments import connect, webhooks
from gateway.payments.config import webhook_secrets
from gateway.payments.provider import PaymentError, PaymentProvider
from web.throttle import AddressThrottle


def payment_provider(app: Starlette) -> PaymentProvider:
    return app.state.deps.payments


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


# Stripe's deliveries always verify; unverified ones are strangers' junk,
# and each costs a row: an address may leave this many, then one a minute
# (web/throttle.py's bucket, in this process's memory).
UNVERIFIED_BURST = 20
UNVERIFIED_REFILL_SECONDS = 60.0
UNVERIFIED_ADDRESSES = 10_000


def _webhook(throttle: AddressThrottle):
    async def stripe_webhook(request: Request) -> Response:
        deps = request.app.state.deps
        body = await _bounded_body(request, webhooks.MAX_BODY_BYTES)
        if body is None:
            return JSONResponse({"outcome": "too large"}, status_code=413)
        address = request.client.host if request.client else ""
        result = await webhooks.handle(
            body,
            request.headers.get("stripe-signature"),
            secrets=webhook_secrets(deps.settings),
            deps=deps,
            provider=payment_provider(request.app),
            may_keep_unverified=lambda: throttle.take(address, deps.clock().timestamp()) == 0,
        )
        return JSONResponse({"outcome": result.outcome}, status_code=result.status)

    return stripe_webhook


async def _firm_from_token(request: Request) -> Firm | None:
    deps = request.app.state.deps
    firm_id = connect.read_token(deps.master_key, request.query_params.get("t", ""), deps.clock())
    return await Firm.get_or_none(id=firm_id) if firm_id is not None else None


def _stale_link() -> Response:
    return PlainTextResponse("This setup link is not valid any more: send \"setup payments\" again.",
                             status_code=404)


async def connect_refresh(request: Request) -> Response:
    deps = request.app.state.deps
    firm = await _firm_from_token(request)
    if firm is None:
        return _stale_link()
    try:
        link = await connect.start_onboarding(firm, payment_provider(request.app),
                                              base_url=deps.settings.public_base_url, master_key=deps.master_key,
                                              now=deps.clock(), actor="stripe (refresh)")
    except PaymentError as exc:
        return PlainTextResponse(str(exc), status_code=503)
    return RedirectResponse(link.url, status_code=303)


async def connect_return(request: Request) -> Response:
    deps = request.app.state.deps
    firm = await _firm_from_token(request)
    if firm is None:
        return _stale_link()
    try:
        status = await connect.finish_onboarding(firm, payment_provider(request.app), now=deps.clock(),
                                                 actor="stripe (return)", base_url=deps.settings.public_base_url)
    except PaymentError as exc:
        return PlainTextResponse(str(exc), status_code=503)
    if status.charges_enabled:
        text = f"{firm.name} is ready to take payments: your payment requests now carry a Pay button."
    else:
        text = (f"Thank you. Stripe has not enabled payments for {firm.name} yet (it may still be checking "
                "your details). We will switch payments on as soon as it does; to finish the sign-up, "
                "send \"setup payments\" again.")
    return PlainTextResponse(text)


def routes() -> list[Route]:
    return [
        Route("/stripe/webhook", _webhook(AddressThrottle(UNVERIFIED_BURST, UNVERIFIED_REFILL_SECONDS,
                                                          UNVERIFIED_ADDRESSES)), methods=["POST"]),
        Route(connect.REFRESH_PATH, connect_refresh, methods=["GET"]),
        Route(connect.RETURN_PATH, connect_return, methods=["GET"]),
    ]
