"""Signing in from a mailed link, and out.

GET /staff/sign-in/<token> only shows whom the link signs in and a "Sign
in" button: mail scanners fetch links, and must not use them up. The
button's POST (with a CSRF token bound to this browser and this link)
spends the token, starts a session, logs the sign-in and tells the member
by mail, so a sign-in they did not make does not go unnoticed. A used,
expired or unknown link gets a page that says how to get a new one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.core import events
from gateway.core.models import Firm, Staff
from gateway.core.settings import zone
from gateway.outbound import outbox
from gateway.vault import signin
from web.client import small_form
from web.staff.pages import StaffPages


def _purpose(token: str) -> str:
    return f"staff-sign-in:{vault.token_hash(token)}"


def _browser(user_agent: str) -> str:
    """The browser as a person names it, from its User-Agent: enough to
    recognise one's own, without echoing a long header into a mail."""
    for name in ("Edg/", "OPR/", "Firefox/", "Chrome/", "Safari/"):
        if name in user_agent:
            browser = {"Edg/": "Edge", "OPR/": "Opera"}.get(name, name.rstrip("/"))
            break
    else:
        browser = "an unknown browser"
    for system in ("Windows", "Android", "iPhone", "iPad", "Mac OS X", "Linux"):
        if system in user_agent:
            return f"{browser} on {system.replace('Mac OS X', 'macOS')}"
    return browser


class SignIn:
    def __init__(self, pages: StaffPages) -> None:
        self.pages = pages
        self.deps = pages.deps

    def routes(self) -> list[Route]:
        return [
            Route("/staff/sign-in/{token}", self.show, methods=["GET"]),
            Route("/staff/sign-in/{token}", self.sign_in, methods=["POST"]),
            Route("/staff/sign-out", self.sign_out, methods=["POST"]),
        ]

    def _unusable(self, request: Request, firm: Firm | None) -> Response:
        """410 for a link we know (used or expired), 404 for one we don't:
        either way, how to get a new one."""
        gateway = firm.gateway_address if firm else ""
        return self.pages.templates.TemplateResponse(
            request, "pages/staff/link_used.html", {"gateway": gateway}, status_code=410 if firm else 404)

    def _form(self, request: Request, staff: Staff, firm: Firm, *, expired_form: bool = False) -> Response:
        token = request.path_params["token"]
        form_token = self.pages.csrf.for_form(request, _purpose(token))
        response = self.pages.templates.TemplateResponse(
            request, "pages/staff/sign_in.html",
            {"staff": staff, "firm": firm, "token": token, "csrf_token": form_token.value,
             "expired_form": expired_form},
            status_code=403 if expired_form else 200)
        self.pages.csrf.remember(response, form_token)
        return response

    async def show(self, request: Request) -> Response:
        found = await signin.look(request.path_params["token"], self.deps.clock())
        if not found.usable:
            return self._unusable(request, found.firm)
        return self._form(request, found.staff, found.firm)

    async def sign_in(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        now = self.deps.clock()
        if not self.pages.csrf.valid(request, form, _purpose(token)):
            found = await signin.look(token, now)
            if not found.usable:
                return self._unusable(request, found.firm)
            return self._form(request, found.staff, found.firm, expired_form=True)
        async with in_transaction():
            staff = await signin.spend(token, now)
            if staff is None:
                found = await signin.look(token, now)
                return self._unusable(request, found.firm)
            session_id = await self.pages.sessions.start(request, staff, now)
            await self._tell(request, staff, now)
        self.deps.outbox_wake.set()
        response = RedirectResponse("/staff/", status_code=303)
        self.pages.sessions.set_cookie(response, session_id)
        return response

    async def _tell(self, request: Request, staff: Staff, now) -> None:
        """The event log, and a mail to the member: "New sign-in"."""
        firm = staff.firm
        address = request.client.host if request.client else ""
        browser = _browser(request.headers.get("user-agent", ""))
        await events.record(now, staff.email, "staff.signed_in", firm=firm, address=address, browser=browser)
        when = now.astimezone(zone(firm.timezone)).strftime("%Y-%m-%d %H:%M %Z")
        await outbox.enqueue_notice(
            self.deps.composer, master_key=self.deps.master_key, kind="staff-sign-in", now=now,
            firm_domain=firm.domain, firm_name=firm.name, to=staff.email,
            subject="New sign-in to the dashboard",
            paragraphs=[
                f"You signed in to {firm.name}'s dashboard on {when}, with {browser} from {address or 'an unknown address'}.",
                "If this was not you, someone can read your mail: change your mail password, and ask an "
                f"admin of {firm.name} to set your level to none, which signs you out everywhere at once.",
            ],
        )

    async def sign_out(self, request: Request) -> Response:
        signed_in = await self.pages.sessions.current(request, self.deps.clock())
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        if signed_in is not None:
            if not self.pages.sessions.csrf_ok(request, signed_in, form):
                return self.pages.refused(request)
            await self.pages.sessions.end(request)
            await events.record(self.deps.clock(), signed_in.email, "staff.signed_out", firm=signed_in.firm)
        return self.pages.signed_out(request, status=200, ended=True)
