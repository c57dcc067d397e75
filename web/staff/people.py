"""/staff/people (admin): who may do what. Changing a level, adding and
removing someone run the `grant` and `revoke` mail commands, so their rules
hold here too: the firm keeps its last admin, the person affected is told
by mail, the admin gets the command's confirmation, all is logged. A level
of none, or removal, signs the person out everywhere at once
(gateway/core/directory.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.models import Level, Staff
from web.client import translator
from web.staff.actions import Actions
from web.staff.pages import StaffPages
from web.staff.sessions import SignedIn

LEVELS = [level.value for level in Level]


class People:
    def __init__(self, pages: StaffPages, actions: Actions) -> None:
        self.pages = pages
        self.actions = actions

    def routes(self) -> list[Route]:
        return [
            Route("/staff/people", self.show, methods=["GET"]),
            Route("/staff/people/add", self.add, methods=["POST"]),
            Route("/staff/people/{id:int}/level", self.change, methods=["POST"]),
            Route("/staff/people/{id:int}/remove", self.ask_remove, methods=["GET"]),
            Route("/staff/people/{id:int}/remove", self.remove, methods=["POST"]),
        ]

    async def show(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.ADMIN)
        if isinstance(signed_in, Response):
            return signed_in
        staff = await Staff.filter(firm_id=signed_in.firm.id).order_by("email")
        return await self.pages.render(request, signed_in, "pages/staff/people.html",
                                       {"staff": staff, "levels": LEVELS}, section="/staff/people")

    async def _colleague(self, request: Request, signed_in: SignedIn) -> Staff | None:
        return await Staff.get_or_none(id=request.path_params["id"], firm_id=signed_in.firm.id)

    async def _grant(self, request: Request, signed_in: SignedIn, email: str, level: str) -> Response:
        t = translator(request)
        done = await self.actions.run(signed_in, "grant", [email, level])
        if done.refused is not None:
            return await self.pages.done(signed_in, "/staff/people", False,
                                         t("staff_not_done", reason=str(done.refused)))
        level_name = t(f"staff_level_{level.lower()}") if level.lower() in LEVELS else level
        return await self.pages.done(signed_in, "/staff/people", True,
                                     t("staff_people_granted", email=email.lower(), level=level_name))

    async def add(self, request: Request) -> Response:
        got = await self.pages.posted(request, Level.ADMIN)
        if isinstance(got, Response):
            return got
        signed_in, form = got
        return await self._grant(request, signed_in, form.get("email", ""), form.get("level", ""))

    async def change(self, request: Request) -> Response:
        got = await self.pages.posted(request, Level.ADMIN)
        if isinstance(got, Response):
            return got
        signed_in, form = got
        colleague = await self._colleague(request, signed_in)
        if colleague is None:
            return await self.pages.not_found(request, signed_in)
        return await self._grant(request, signed_in, colleague.email, form.get("level", ""))

    async def ask_remove(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.ADMIN)
        if isinstance(signed_in, Response):
            return signed_in
        colleague = await self._colleague(request, signed_in)
        if colleague is None:
            return await self.pages.not_found(request, signed_in)
        return await self.pages.render(request, signed_in, "pages/staff/confirm_remove.html",
                                       {"colleague": colleague}, section="/staff/people")

    async def remove(self, request: Request) -> Response:
        got = await self.pages.posted(request, Level.ADMIN)
        if isinstance(got, Response):
            return got
        signed_in, _ = got
        t = translator(request)
        colleague = await self._colleague(request, signed_in)
        if colleague is None:
            return await self.pages.not_found(request, signed_in)
        done = await self.actions.run(signed_in, "revoke", [colleague.email])
        if done.refused is not None:
            return await self.pages.done(signed_in, "/staff/people", False,
                                         t("staff_not_done", reason=str(done.refused)))
        return await self.pages.done(signed_in, "/staff/people", True,
                                     t("staff_people_removed", email=colleague.email))
