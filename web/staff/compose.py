"""/staff/compose: a payment request from a form, made as a mailed one is.

The form becomes the member's mail to the firm's gateway address
(drafting.py), checked by the directive grammar before it leaves (its
errors shown beside the fields), held to the gateway's message size, then
admitted into the inbound queue with the hourly limits (deps.submit) and
made into a request by the runner, rules and handler every mail goes
through: the client's mail, the confirmation to the member (with the
password, if the gateway made one) and the events are the same.

The page waits a few seconds for the runner to make the request, then
shows it; a busy queue gets a page that says it is on its way.
"""

from __future__ import annotations

import asyncio
import time

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive

from gateway.commands import registry
from gateway.core.models import InboundMessage, InboundStatus, Level, PaymentRequest
from gateway.core.money import CURRENCY_DECIMALS
from gateway.deps import NotAdmitted
from gateway.outbound.compose import to_bytes
from web.client import translator
from web.staff import drafting
from web.staff.drafting import Draft
from web.staff.pages import StaffPages
from web.staff.sessions import SignedIn

MAX_FILES = 20
# How long the page waits for the runner before saying the request is on its way.
WAIT_SECONDS = 10.0
# An upload past the limit is still read to its end, up to this many times
# the limit, so the browser gets the page that says so (browsers show a
# connection error, not our page, when the server answers mid-upload).
DRAIN_TIMES = 4


class TooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that gives up past ``limit`` bytes of body: an upload is
    refused as it arrives, not once it is all on disk."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise TooLarge
        return message

    return limited


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _drain(receive: Receive, limit: int) -> None:
    read = 0
    while read <= limit:
        message = await receive()
        read += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def read_draft(form: FormData) -> Draft:
    one = drafting.one_line
    files = []
    for upload in form.getlist("files"):
        if isinstance(upload, UploadFile) and upload.filename:
            files.append((upload.filename, upload.content_type or "application/octet-stream", await upload.read()))
    return Draft(
        client=one(_text(form, "client")), subject=one(_text(form, "subject")),
        currency=one(_text(form, "currency")).upper(), invoice=one(_text(form, "invoice")),
        amount=one(_text(form, "amount")), fee=_text(form, "fee") == "yes",
        password_choice="own" if _text(form, "password_choice") == "own" else "generate",
        password=_text(form, "password"), hint=one(_text(form, "hint")), message=_text(form, "message"),
        expires_days=_text(form, "expires_days") if _text(form, "expires_days") in drafting.EXPIRY_DAYS else "30",
        expires_on=one(_text(form, "expires_on")), files=files,
    )


class Compose:
    def __init__(self, pages: StaffPages) -> None:
        self.pages = pages
        self.deps = pages.deps

    def routes(self) -> list[Route]:
        return [Route("/staff/compose", self.show, methods=["GET"]),
                Route("/staff/compose", self.send, methods=["POST"])]

    @property
    def limit(self) -> int:
        return self.deps.settings.max_message_size

    async def show(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.SEND)
        if isinstance(signed_in, Response):
            return signed_in
        firm = signed_in.firm
        draft = Draft(currency=firm.currency, fee=firm.fee_by_default,
                      expires_days=str(self.deps.settings.request_ttl_days))
        return await self._form(request, signed_in, draft, {})

    async def _form(self, request: Request, signed_in: SignedIn, draft: Draft, errors: dict[str, list[str]], *,
                    status: int = 200, refused: str = "") -> Response:
        t = translator(request)
        days = list(drafting.EXPIRY_DAYS)
        if draft.expires_days not in days:
            days.append(draft.expires_days)
        context = {
            "draft": draft, "errors": errors, "refused": refused,
            "currencies": sorted(CURRENCY_DECIMALS),
            "expiry_days": days,
            "max_size": t.size(self.limit), "max_files_size": t.size(self.limit * 3 // 4),
            "max_files": MAX_FILES,
        }
        return await self.pages.render(request, signed_in, "pages/staff/compose.html", context, status=status,
                                       section="/staff/compose")

    async def send(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.SEND)
        if isinstance(signed_in, Response):
            return signed_in
        t = translator(request)
        firm = signed_in.firm
        # Room for the form's fields around files the size of a whole message:
        # past that, the message built from them could not be under the limit.
        ceiling = self.limit + 64 * 1024
        limited = Request(request.scope, _limited(request.receive, ceiling))
        try:
            if int(request.headers.get("content-length") or 0) > ceiling:
                raise TooLarge
            form = await limited.form(max_files=MAX_FILES, max_fields=30, max_part_size=64 * 1024)
            draft = await read_draft(form)
        except TooLarge:
            await _drain(request.receive, self.limit * DRAIN_TIMES)
            return await self._too_large(request, signed_in)
        except (MultiPartException, HTTPException):  # too many files or fields, or not a form at all
            return await self._form(request, signed_in, Draft(currency=firm.currency),
                                    {"files": [t("staff_compose_files_many", count=MAX_FILES)]}, status=400)
        finally:
            await limited.close()
        if not self.pages.sessions.csrf_ok(request, signed_in, form):
            return self.pages.refused(request)

        now = self.deps.clock()
        errors = drafting.check(draft, firm_currency=firm.currency, limit_minor=firm.request_limit_minor,
                                default_fee=firm.fee_by_default, now=now, ttl_days=self.deps.settings.request_ttl_days,
                                commands=set(registry.WORDS))
        mail = drafting.to_mail(draft, sender=signed_in.email, gateway=firm.gateway_address,
                                hostname=self.deps.settings.hostname, now=now)
        raw = to_bytes(mail)
        if len(raw) > self.limit:
            errors.setdefault("files", []).append(t("staff_compose_too_big", size=t.size(len(raw)),
                                                    limit=t.size(self.limit), files=t.size(self.limit * 3 // 4)))
        if errors:
            draft.files = []  # a browser cannot be handed its files back: they are chosen again
            return await self._form(request, signed_in, draft, errors, status=400)
        address = request.client.host if request.client else ""
        assert self.deps.submit is not None, "the service sets deps.submit"
        try:
            queue_id = await self.deps.submit(raw, sender=signed_in.email, firm_domain=firm.domain,
                                              rcpt=firm.gateway_address, peer=f"dashboard {address}")
        except NotAdmitted as refused:
            draft.files = []
            return await self._form(request, signed_in, draft, {}, status=429 if "limit" in refused.reason else 403,
                                    refused=t(f"staff_compose_refused_{refused.reason}"))
        made = await self._made(queue_id, firm.id, signed_in.email, str(mail["Message-ID"]))
        if made is None:
            return await self.pages.done(signed_in, "/staff/", True, t("staff_compose_queued", client=draft.client))
        return await self.pages.done(signed_in, f"/staff/requests/{made.id}", True,
                                     t("staff_compose_sent", client=made.client_email))

    async def _made(self, queue_id: str, firm_id: int, sender: str, message_id: str) -> PaymentRequest | None:
        """The request the runner made of the message, once it has (or None
        if it is still queued after WAIT_SECONDS, or became no request)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            status = await InboundMessage.filter(id=queue_id).values_list("status", flat=True)
            if status and status[0] in (InboundStatus.DONE, InboundStatus.QUARANTINED):
                break
            await asyncio.sleep(0.05)
        return await PaymentRequest.get_or_none(firm_id=firm_id, sender=sender, source_message_id=message_id)

    async def _too_large(self, request: Request, signed_in: SignedIn) -> Response:
        t = translator(request)
        firm = signed_in.firm
        return await self._form(request, signed_in, Draft(currency=firm.currency), {"files": [
            t("staff_compose_too_big_upload", limit=t.size(self.limit), files=t.size(self.limit * 3 // 4))]},
            status=413)
