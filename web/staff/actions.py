"""A request's buttons: remind, cancel, refund. Each runs the mail command
of the same name (gateway/commands/perform.py), so the rules, the events,
the notices to colleagues, the mail to the client and the confirmation
mailed to the member are the command's own; the page then says how it went.

Cancel and refund ask first, on a page of their own (no script needed);
remind does no harm twice (the command allows one a day) and goes at once.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.commands import Context, Run
from gateway.commands.perform import perform
from gateway.core.models import Level, PaymentRequest
from gateway.mail.context import Command
from web.client import small_form, translator
from web.staff.pages import StaffPages
from web.staff.requests import RequestPages
from web.staff.sessions import SignedIn

# Each action: the least level its URL needs (the command checks the rest:
# whose request, which status), and whether it asks first.
ACTIONS = {"remind": Level.SEND, "cancel": Level.SEND, "refund": Level.ADMIN}


class Actions:
    def __init__(self, pages: StaffPages, requests: RequestPages) -> None:
        self.pages = pages
        self.requests = requests
        self.deps = pages.deps

    def routes(self) -> list[Route]:
        routes = [Route("/staff/requests/{id:int}/{action:str}", self.act, methods=["POST"])]
        routes += [Route(f"/staff/requests/{{id:int}}/{name}", self.ask, methods=["GET"]) for name in ("cancel", "refund")]
        return routes

    async def _found(self, request: Request, action: str) -> tuple[SignedIn, PaymentRequest] | Response:
        signed_in = await self.pages.member(request, ACTIONS.get(action, Level.ADMIN))
        if isinstance(signed_in, Response):
            return signed_in
        found = await self.requests.find(signed_in, request.path_params["id"])
        if found is None or action not in ACTIONS:
            return await self.pages.not_found(request, signed_in)
        return signed_in, found

    async def ask(self, request: Request) -> Response:
        action = request.url.path.rsplit("/", 1)[1]
        found = await self._found(request, action)
        if isinstance(found, Response):
            return found
        signed_in, payment_request = found
        context = await self.requests.details(request, signed_in, payment_request)
        return await self.pages.render(request, signed_in, f"pages/staff/confirm_{action}.html", context,
                                       section="/staff/")

    async def act(self, request: Request) -> Response:
        action = request.path_params["action"]
        found = await self._found(request, action)
        if isinstance(found, Response):
            return found
        signed_in, payment_request = found
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        if not self.pages.sessions.csrf_ok(request, signed_in, form):
            return self.pages.refused(request)
        args = [f"R{payment_request.id}"]
        amount = str(form.get("amount") or "").strip()
        if action == "refund" and amount:
            args.append(amount)
        done = await self.run(signed_in, action, args)
        t = translator(request)
        page = f"/staff/requests/{payment_request.id}"
        if done.refused is not None:
            return await self.pages.done(signed_in, page, False, t("staff_not_done", reason=str(done.refused)))
        return await self.pages.done(signed_in, page, True, t(f"staff_done_{action}",
                                                              client=payment_request.client_email))

    async def run(self, signed_in: SignedIn, name: str, args: list[str]):
        """The mail command ``name`` as this member, from the dashboard."""
        command = Command(name, tuple(args))
        context = Context(sender=signed_in.email, firm=signed_in.firm, staff=signed_in.staff,
                          now=self.deps.clock(), command=command)
        return await perform(Run(self.deps, context), refused_subject=f"Not done: {name} {' '.join(args)}",
                             via="dashboard")
