"""The Starlette application factory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from gateway.core.paths import TEMPLATES_DIR
from gateway.deps import Deps
from gateway.payments import web_routes as payment_routes
from web import demo, health, pay, replies, staff, staff_replies
from web.accesslog import AccessLog
from web.client import ClientPages, translator
from web.i18n import LANGUAGE_NAMES, LanguageMiddleware
from web.limits import Limits
from web.proxies import TrustedProxies, networks
from web.security import SecurityHeaders

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _i18n(request: Request) -> dict:
    return {"t": translator(request), "language_names": LANGUAGE_NAMES}


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        # Templates do not change while serving: no stat() of each one per page.
        auto_reload=False,
    )
    return Jinja2Templates(env=env, context_processors=[_i18n])


class _App(Starlette):
    """Starlette, with some middleware outside its error handler.

    Starlette puts its own middleware inside the handler that answers an
    uncaught exception with a 500, so that answer would pass none of them:
    no security headers on exactly the page an attacker provokes. These sit
    outside it and see every response."""

    outer: list[Middleware] = []

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for cls, args, kwargs in reversed(self.outer):
            app = cls(app, *args, **kwargs)
        return app


def create_app(deps: Deps, limits: Limits | None = None,
               monotonic: Callable[[], float] = time.monotonic) -> Starlette:
    https = deps.settings.public_base_url.startswith("https:")
    pages = ClientPages(deps, templates(), limits or Limits(), monotonic)

    async def not_found(request: Request, exc: Exception) -> Response:
        return pages.not_found(request)

    routes: list[Route | Mount] = [
        *health.routes(), *pages.routes(), *pay.routes(pages), *payment_routes.routes(),
        *staff.routes(deps, pages.templates, pages.csrf),
        *replies.routes(pages), *staff_replies.routes(pages),
    ]
    routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    if deps.settings.demo:
        routes += demo.routes()
    app = _App(
        routes=routes,
        middleware=[Middleware(LanguageMiddleware, secure=https)],
        exception_handlers={404: not_found},
    )
    app.outer = [
        Middleware(AccessLog),
        Middleware(TrustedProxies, trusted=networks(deps.settings.trusted_proxies)),
        Middleware(SecurityHeaders, https=https),
    ]
    app.state.deps = deps
    app.state.templates = pages.templates
    app.state.pages = pages
    return app
