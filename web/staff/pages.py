"""What every dashboard page shares: who is signed in and at which level,
the pages that say no, and rendering with the navigation.

Every route asks ``member(request, LEVEL)`` first, so what a level may see
is checked by URL on the server, not by which buttons a page shows: no
session is a 401 page saying how to sign in, too low a level a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from gateway.core.models import Level
from gateway.deps import Deps
from web.client import small_form
from web.csrf import Csrf
from web.staff.sessions import SignedIn, StaffSessions


@dataclass(frozen=True)
class NavItem:
    path: str
    key: str  # its label in the catalogue
    level: Level


NAV = (
    NavItem("/staff/", "staff_nav_requests", Level.SEND),
    NavItem("/staff/compose", "staff_nav_compose", Level.SEND),
    NavItem("/staff/reports", "staff_nav_reports", Level.REPORT),
    NavItem("/staff/people", "staff_nav_people", Level.ADMIN),
    NavItem("/staff/payments", "staff_nav_payments", Level.ADMIN),
)


class StaffPages:
    def __init__(self, deps: Deps, templates: Jinja2Templates, csrf: Csrf) -> None:
        self.deps = deps
        self.templates = templates
        self.csrf = csrf
        self.sessions = StaffSessions(csrf, secure=deps.settings.public_base_url.startswith("https:"))

    async def member(self, request: Request, needed: Level = Level.SEND) -> SignedIn | Response:
        """The signed-in member if their level allows ``needed``; else the
        page to answer with."""
        signed_in = await self.sessions.current(request, self.deps.clock())
        if signed_in is None:
            return self.signed_out(request)
        if not signed_in.level.allows(needed):
            return await self.render(request, signed_in, "pages/staff/forbidden.html",
                                     {"needed": needed.value}, status=403)
        return signed_in

    async def posted(self, request: Request, needed: Level) -> tuple[SignedIn, dict[str, str]] | Response:
        """A small form's fields (trimmed) from a member at ``needed``, with
        this session's CSRF token; else the page to answer with."""
        signed_in = await self.member(request, needed)
        if isinstance(signed_in, Response):
            return signed_in
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        if not self.sessions.csrf_ok(request, signed_in, form):
            return self.refused(request)
        return signed_in, {key: str(value).strip() for key, value in form.items()}

    def signed_out(self, request: Request, *, status: int = 401, ended: bool = False) -> Response:
        response = self.templates.TemplateResponse(request, "pages/staff/signed_out.html", {"ended": ended},
                                                   status_code=status)
        self.sessions.clear_cookie(response)
        return response

    async def render(self, request: Request, signed_in: SignedIn, template: str, context: dict, *,
                     status: int = 200, section: str = "") -> Response:
        flash = signed_in.flash
        if flash:
            await self.sessions.heard(signed_in)
        nav = [item for item in NAV if signed_in.level.allows(item.level)]
        # The language switch keeps the page's filters.
        kept = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
        full = {"me": signed_in, "csrf_token": signed_in.csrf_token, "flash": flash, "nav": nav,
                "section": section, "lang_query": f"{kept}&" if kept else "", **context}
        return self.templates.TemplateResponse(request, template, full, status_code=status)

    async def not_found(self, request: Request, signed_in: SignedIn) -> Response:
        return await self.render(request, signed_in, "pages/staff/not_found.html", {}, status=404)

    async def done(self, signed_in: SignedIn, path: str, ok: bool, text: str) -> Response:
        """After an action: say how it went on the next page (post/redirect/get)."""
        await self.sessions.say(signed_in, ok, text)
        return RedirectResponse(path, status_code=303)

    def refused(self, request: Request) -> Response:
        """A POST whose CSRF token is wrong or that came from another site."""
        return self.templates.TemplateResponse(request, "pages/staff/refused.html", {}, status_code=403)
