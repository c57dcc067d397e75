"""Test helpers for the payment code (used by tests/test_payments_*.py).

* :func:`local_stripe` — localstripe (a dev dependency) served in this
  event loop on 127.0.0.1 only, with a fresh, memory-only state: its store
  is cleared and its pickle (``/tmp/localstripe.pickle``, a fixed path) is
  neither read nor written.
* :class:`RecordedStripe` — a tiny Stripe API on 127.0.0.1 answering
  recorded Stripe responses (``tests/data/stripe/*.json``) for what
  localstripe lacks (Connect, ConfirmationTokens, payout listings), and
  recording each call (path, form, ``Stripe-Account``, ``Idempotency-Key``).
* :func:`serve` — an ASGI app under uvicorn on 127.0.0.1 in this loop, as
  the service serves its own (gateway.service.start_web).
* rows and deps for DB-backed tests, and :func:`sign` for webhook bodies.

Nothing here runs in production; localstripe is imported only when used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import stripe
from aiohttp import web
from starlette.types import ASGIApp

from gateway.core import settings as settings_module
from gateway.core.clock import Clock, system_clock
from gateway.core.models import Firm, Level, PaymentRequest, Staff
from gateway.core.paths import TEMPLATES_DIR
from gateway.deps import Deps
from gateway.outbound.compose import Composer
from gateway.service import listening_socket, start_web

WEBHOOK_SECRET = "whsec_test_clienttrack_0123456789"


def make_deps(tmp_path: Path, *, clock: Clock = system_clock, **settings: Any) -> Deps:
    options = {"data_dir": tmp_path / "data", "web_port": 0, "smtp_port": 0, **settings}
    loaded = settings_module.load(options, environ={})
    return Deps(loaded, secrets.token_bytes(32), clock, Composer(TEMPLATES_DIR / "email", hostname=loaded.hostname))


async def make_firm(now: datetime, *, domain: str = "firm.example", name: str = "Maple Accounting",
                    country: str = "CA", currency: str = "CAD", account: str = "acct_local",
                    ready: bool = True, province: str = "ON",
                    notice: date | None = date(2024, 1, 2)) -> tuple[Firm, Staff]:
    # A firm that gave the card networks its surcharge notice long ago, unless told otherwise.
    firm = await Firm.create(domain=domain, name=name, country=country, currency=currency, province=province,
                             surcharge_notice_date=notice, stripe_account_id=account, payments_ready=ready,
                             created_at=now)
    staff = await Staff.create(firm=firm, email=f"staff@{domain}", name="Sam Staff", level=Level.ADMIN,
                               created_at=now)
    return firm, staff


async def make_request(firm: Firm, staff: Staff, now: datetime, *, amount_minor: int = 10_000,
                       currency: str = "CAD", pass_fee: bool = True, invoice: str = "1042",
                       client: str = "jane@client.example", **fields: Any) -> PaymentRequest:
    values: dict[str, Any] = dict(
        firm=firm, staff=staff, sender=staff.email, invoice=invoice, client_email=client,
        amount_minor=amount_minor, currency=currency, pass_fee=pass_fee,
        token_hash=secrets.token_hex(32), kdf={}, wrapped_key=b"",
        source_message_id=f"<{secrets.token_hex(8)}@{firm.domain}>",
        created_at=now, expires_at=now + timedelta(days=30),
    )
    return await PaymentRequest.create(**{**values, **fields})


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header, made by the SDK's own helper."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 (a free port) in this loop, as the service
    serves its own; yields its base URL."""
    sock = listening_socket("127.0.0.1", 0)
    server, task = await start_web(app, sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.stop()
        await task


@contextlib.asynccontextmanager
async def _aiohttp_site(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def local_stripe() -> AsyncIterator[str]:
    """localstripe on 127.0.0.1, fresh, in memory; yields its base URL."""
    with warnings.catch_warnings():  # its module-level routes are plain functions
        warnings.simplefilter("ignore", DeprecationWarning)
        from localstripe import resources, server, webhooks

    store = resources.store
    store.clear()
    store.dump_to_disk = lambda: None  # type: ignore[method-assign]  # no /tmp/localstripe.pickle
    webhooks._webhooks.clear()
    # A fresh Application with localstripe's routes and middlewares (its
    # module-level app can be started only once).
    app = web.Application(middlewares=list(server.app.middlewares))
    app.router.add_route("POST", _CONFIRM, _confirm_with_amount(resources, server))
    for resource in server.app.router.resources():
        for route in resource:
            if (route.method, resource.canonical) != ("POST", _CONFIRM):
                app.router.add_route(route.method, resource.canonical, _async_handler(route.handler))
    app.on_response_prepare.append(server.add_cors_headers)
    try:
        async with _aiohttp_site(app) as url:
            yield url
    finally:
        # Drop webhook deliveries still scheduled (localstripe sends each a second later).
        for task in asyncio.all_tasks():
            if getattr(task.get_coro(), "__qualname__", "") == "_send_webhook" and not task.done():
                task.cancel()
        webhooks._webhooks.clear()
        store.clear()
        del store.dump_to_disk


_CONFIRM = "/v1/payment_intents/{id}/confirm"


def _confirm_with_amount(resources: Any, server: Any) -> Any:
    """localstripe's confirm, taught Stripe's ``amount_to_confirm``: a
    confirmation whose amount is not the PaymentIntent's fails (400), as
    Stripe documents it for the API version the SDK pins."""
    async def confirm(request: web.Request) -> web.StreamResponse:
        data = await server.get_post_data(request) or {}
        data.update(server.unflatten_data(request.query) or {})
        data["id"] = request.match_info["id"]
        expand = data.pop("expand", None)
        wanted = data.pop("amount_to_confirm", None)
        try:
            intent = resources.PaymentIntent._api_retrieve(data["id"])
            if wanted is not None and int(wanted) != int(intent.amount):
                raise resources.UserError(400, f"amount_to_confirm {wanted} is not the amount {intent.amount}")
            return server.json_response(resources.PaymentIntent._api_confirm(**data)._export(expand=expand))
        except resources.UserError as error:
            return error.to_response()

    return confirm


def _async_handler(handler: Any) -> Any:
    """localstripe has plain-function handlers, which aiohttp deprecates."""
    if asyncio.iscoroutinefunction(handler):
        return handler

    async def wrapped(request: web.Request) -> web.StreamResponse:
        return handler(request)

    return wrapped


async def register_local_webhook(base_url: str, name: str, url: str, secret: str = WEBHOOK_SECRET,
                                 events: list[str] | None = None) -> None:
    import aiohttp

    form = [("url", url), ("secret", secret)] + [("events[]", e) for e in events or []]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/_config/webhooks/{name}", data=form) as answer:
            answer.raise_for_status()


# -- recorded Stripe responses ----------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    form: dict[str, str]
    query: dict[str, str]
    account: str
    idempotency_key: str


@dataclass
class RecordedStripe:
    """A Stripe API that answers recorded responses and records the calls.

    ``routes`` maps ``"METHOD /v1/path"`` (``{id}`` matches one path part)
    to a JSON file name in ``data_dir`` or to a dict."""

    data_dir: Path
    routes: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def load(self, name: str) -> dict:
        return json.loads((self.data_dir / name).read_text())

    def answer(self, route: str, response: str | dict, status: int = 200) -> None:
        self.routes[route] = (response, status)

    def calls_to(self, method: str, path_pattern: str) -> list[Call]:
        rx = re.compile("^" + re.escape(path_pattern).replace(r"\{id\}", "[^/]+") + "$")
        return [c for c in self.calls if c.method == method and rx.match(c.path)]

    async def _handle(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items()} if request.method == "POST" else {}
        self.calls.append(Call(request.method, request.path, {k: str(v) for k, v in form.items()},
                               dict(request.query), request.headers.get("Stripe-Account", ""),
                               request.headers.get("Idempotency-Key", "")))
        for route, (response, status) in self.routes.items():
            method, pattern = route.split(" ", 1)
            rx = "^" + re.escape(pattern).replace(r"\{id\}", "[^/]+") + "$"
            if method == request.method and re.match(rx, request.path):
                body = self.load(response) if isinstance(response, str) else response
                return web.json_response(body, status=status, headers={"Request-Id": "req_recorded"})
        return web.json_response({"error": {"type": "invalid_request_error",
                                            "message": f"Unrecorded call: {request.method} {request.path}"}},
                                 status=404)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        async with _aiohttp_site(app) as url:
            yield url
