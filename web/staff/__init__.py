"""The firm's dashboard under /staff/: one module per group of pages.

Reached from a mailed one-time link (signin.py); every page checks the
member's level by URL (pages.py); actions run the mail commands' own code.
"""

from __future__ import annotations

from starlette.routing import Route
from starlette.templating import Jinja2Templates

from gateway.deps import Deps
from web.csrf import Csrf
from web.staff.actions import Actions
from web.staff.compose import Compose
from web.staff.pages import StaffPages
from web.staff.payments import Payments
from web.staff.people import People
from web.staff.reports import Reports
from web.staff.requests import RequestPages
from web.staff.signin import SignIn


def routes(deps: Deps, templates: Jinja2Templates, csrf: Csrf) -> list[Route]:
    pages = StaffPages(deps, templates, csrf)
    requests = RequestPages(pages)
    actions = Actions(pages, requests)
    return [*SignIn(pages).routes(), *requests.routes(), *actions.routes(), *Compose(pages).routes(),
            *People(pages, actions).routes(), *Reports(pages).routes(), *Payments(pages, actions).routes()]
