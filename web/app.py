"""The Starlette application factory."""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gateway.deps import Deps
from gateway.paths import TEMPLATES_DIR
from web import client, demo, health
from web.security import SecurityHeaders

STATIC_DIR = Path(__file__).resolve().parent / "static"


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return Jinja2Templates(env=env)


def create_app(deps: Deps) -> Starlette:
    routes: list[Route | Mount] = [*health.routes(), *client.routes()]
    routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    if deps.settings.demo:
        routes += demo.routes()
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, https=deps.settings.public_base_url.startswith("https:"))])
    app.state.deps = deps
    app.state.templates = templates()
    return app
