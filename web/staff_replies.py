"""/staff/replies/<token>: the staff member reads a client's replies.

The notice that a reply came links here; the link's token (256 bits, only
its SHA-256 stored) names the reply, and the page asks for the request's
password, which the staff member chose: the replies are sealed under the
request's data key like everything else in it. The password opens a
server-side session in this browser (its own cookie, the same rules as the
client's: web/sessions.py) that shows every reply of the request and
serves its files. Tries count against the request's own lock (web/lockout.py):
one password, one budget of guesses, whichever page they are made on.

The dashboard (web/staff/) can link here, or open the same content with
gateway/replies/reading.opened once it has the request's data key.
"""

from __future__ import annotations

from datetime import datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway import vault
from gateway.core import events
from gateway.core.models import ClientReply, PaymentRequest, SealedFile
from gateway.core.settings import zone
from gateway.replies import checklist, reading
from web import downloads
from web.client import ClientPages, small_form, translator
from web.sessions import Sessions

COOKIE = "ct_reply_session"


def routes(pages: ClientPages) -> list[Route]:
    replies = StaffReplies(pages)
    return [
        Route("/staff/replies/{token}", replies.show, methods=["GET"]),
        Route("/staff/replies/{token}", replies.unlock, methods=["POST"]),
        Route("/staff/replies/{token}/files/{position:int}", replies.download, methods=["GET"]),
        Route("/staff/replies/{token}/lock", replies.lock, methods=["POST"]),
    ]


def _purpose(token: str, what: str) -> str:
    return f"staff-reply-{what}:{vault.token_hash(token)}"


class StaffReplies:
    def __init__(self, pages: ClientPages) -> None:
        self.pages = pages
        self.deps = pages.deps
        https = pages.deps.settings.public_base_url.startswith("https:")
        self.sessions = Sessions(pages.deps.master_key, idle=pages.limits.session_idle, secure=https, cookie=COOKIE)

    async def _found(self, request: Request) -> tuple[ClientReply, PaymentRequest] | None:
        """The reply the link names and its request; None for an unknown link,
        or once retention deleted the request's documents (replies with them)."""
        reply = await reading.by_token(request.path_params["token"])
        if reply is None or reply.request.documents_removed_at is not None:
            return None
        return reply, await self.pages.with_staff(reply.request)

    def _render(self, request: Request, context: dict, status: int = 200) -> Response:
        return self.pages.templates.TemplateResponse(request, "pages/staff_reply.html", context, status_code=status)

    def _summary(self, request: Request, reply: ClientReply, found: PaymentRequest) -> dict:
        t = translator(request)
        at = reply.created_at.astimezone(zone(found.firm.timezone))
        return {"req": found, "reply": reply, "token": request.path_params["token"],
                "reply_date": f"{t.date(at.date())} {at:%H:%M}"}

    def form_page(self, request: Request, reply: ClientReply, found: PaymentRequest, *, notice: str = "",
                  status: int = 200) -> Response:
        token = request.path_params["token"]
        form_token = self.pages.csrf.for_form(request, _purpose(token, "unlock"))
        response = self._render(request, {**self._summary(request, reply, found), "opened": None,
                                          "notice": notice, "csrf_token": form_token.value}, status)
        self.pages.csrf.remember(response, form_token)
        return response

    async def show(self, request: Request) -> Response:
        found_pair = await self._found(request)
        if found_pair is None:
            return self.pages.not_found(request)
        reply, found = found_pair
        now = self.deps.clock()
        data_key = await self.sessions.data_key(request, found, now)
        if data_key is None:
            return self.form_page(request, reply, found)
        t = translator(request)
        firm_zone = zone(found.firm.timezone)
        opened = await reading.opened(found, data_key, self.deps.blobs)
        token = request.path_params["token"]
        form_token = self.pages.csrf.for_form(request, _purpose(token, "lock"))
        response = self._render(request, {
            **self._summary(request, reply, found),
            "opened": opened,
            "dates": [f"{t.date(r.at.astimezone(firm_zone).date())} {r.at.astimezone(firm_zone):%H:%M}"
                      for r in opened],
            "checklist": await checklist.checklist(found),
            "csrf_token": form_token.value,
        })
        self.pages.csrf.remember(response, form_token)
        return response

    async def _posted(self, request: Request) -> tuple[FormData, ClientReply, PaymentRequest] | Response:
        """A POST's small form and the reply it names, or the answer."""
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        found_pair = await self._found(request)
        if found_pair is None:
            return self.pages.not_found(request)
        return form, *found_pair

    async def unlock(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        form, reply, found = posted
        t = translator(request)
        token = request.path_params["token"]
        if not self.pages.csrf.valid(request, form, _purpose(token, "unlock")):
            return self.form_page(request, reply, found, notice=t("form_expired"), status=403)
        password = form.get("password")
        if not isinstance(password, str) or not password:
            return self.form_page(request, reply, found, notice=t("empty_password"), status=400)
        now = self.deps.clock()
        address = request.client.host if request.client else ""
        wait = self.pages.throttle.take(address, now.timestamp())
        if wait:
            return self.form_page(request, reply, found, notice=t("too_fast", wait=t.wait(wait)), status=429)
        tried = await self.pages.check_password(found, password, address, now)
        if tried.busy:
            return self.pages.busy(request)
        if tried.locked_until is not None:
            return self._locked(request, reply, found, tried.locked_until, tried.now)
        if tried.data_key is None:
            return self.form_page(request, reply, found, notice=t.plural("wrong", tried.tries_left), status=403)
        session_id = await self.sessions.start(request, found, tried.data_key, tried.now)
        await self._read(found, tried.now)
        response = RedirectResponse(f"/staff/replies/{token}", status_code=303)
        self.sessions.set_cookie(response, session_id)
        return response

    def _locked(self, request: Request, reply: ClientReply, found: PaymentRequest, until: datetime,
                now: datetime) -> Response:
        t = translator(request)
        return self.form_page(request, reply, found, notice=t("locked", wait=t.wait((until - now).total_seconds())),
                              status=429)

    async def _read(self, found: PaymentRequest, now: datetime) -> None:
        """The replies not read before are now: an event says who opened them."""
        unread = await ClientReply.filter(request_id=found.id, read_at__isnull=True).values_list("number", flat=True)
        if unread:
            await ClientReply.filter(request_id=found.id, read_at__isnull=True).update(read_at=now)
            actor = found.staff.email if found.staff else found.sender
            await events.record(now, actor, "request.reply_read", firm=found.firm, request=found,
                                replies=sorted(unread))

    async def download(self, request: Request) -> Response:
        found_pair = await self._found(request)
        if found_pair is None:
            return self.pages.not_found(request)
        reply, found = found_pair
        data_key = await self.sessions.data_key(request, found, self.deps.clock())
        if data_key is None:
            return RedirectResponse(f"/staff/replies/{request.path_params['token']}", status_code=303)
        file = await SealedFile.get_or_none(request_id=found.id, position=request.path_params["position"],
                                            is_body=False)
        if file is None:
            return self.pages.not_found(request)
        return downloads.response(file, data_key, self.deps.blobs)

    async def lock(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        form, reply, found = posted
        if not self.pages.csrf.valid(request, form, _purpose(request.path_params["token"], "lock")):
            return self.pages.refused(request)
        await self.sessions.end(request)
        response = self.form_page(request, reply, found, notice=translator(request)("locked_again"))
        self.sessions.clear_cookie(response)
        return response
