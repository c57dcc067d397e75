"""POST /r/<token>/reply: the client's reply from the message page, for a
secure message or a request that asks for documents (upload=).

Only a browser that unlocked the request may reply (its session holds the
data key the files are sealed under); the form carries a CSRF token like
every other. A reply that cannot be taken (a refused file, too large, empty)
shows the message page again with what was wrong and the text as typed;
nothing of it is kept. A taken one goes to the message page, which says it
was sent and ticks what it answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.core.models import ClientReply, PaymentRequest
from gateway.documents.storing import seal_item
from gateway.outbound.clientmail import can_reply
from gateway.replies import checklist, store
from web import uploads
from web.client import ClientPages, reply_purpose, translator
from web.i18n import Translator

# What a client may send: replies an hour per request (each one mails the
# staff member), and replies being read at once (each holds its sealed
# files in memory until stored).
REPLIES_AN_HOUR = 10
AT_ONCE = 4
# A body this far over the limit is not read at all (the answer closes the connection).
_SLACK = 1024 * 1024


def routes(pages: ClientPages) -> list[Route]:
    replies = Replies(pages)
    return [Route("/r/{token}/reply", replies.submit, methods=["POST"])]


class Replies:
    def __init__(self, pages: ClientPages) -> None:
        self.pages = pages
        self.deps = pages.deps
        self.max_size = pages.deps.settings.reply_max_size
        self._at_once = asyncio.Semaphore(AT_ONCE)

    async def submit(self, request: Request) -> Response:
        opened = await self.pages.unlocked(request)
        if isinstance(opened, Response):
            return opened
        found, data_key = opened
        t = translator(request)
        if not can_reply(found):
            return self.pages.not_found(request)
        if not self.pages.csrf.same_site(request):
            return self.pages.refused(request)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_size + _SLACK:
            return await self.again(request, found, data_key, t("reply_too_large", size=t.size(self.max_size)),
                                    413, "")
        now = self.deps.clock()
        if await ClientReply.filter(request_id=found.id, created_at__gt=now - timedelta(hours=1)).count() \
                >= REPLIES_AN_HOUR:
            return await self.again(request, found, data_key, t("reply_too_many"), 429, "")

        def csrf_ok(value: str) -> bool:
            return self.pages.csrf.valid_value(request, value, reply_purpose(found.token_hash))

        async with self._at_once:
            try:
                form = await uploads.read(request.headers.get("content-type", ""), request.stream(),
                                          data_key=data_key, max_size=self.max_size, csrf_ok=csrf_ok)
            except uploads.TooLarge:
                return await self.again(request, found, data_key,
                                        t("reply_too_large", size=t.size(self.max_size)), 413, "")
            except uploads.BadForm:
                return self.pages.refused(request)
            if not csrf_ok(form.fields.get("csrf_token", "")):
                return self.pages.refused(request)
            text = form.fields.get("message", "").replace("\r\n", "\n").strip()
            if form.refused:
                return await self.again(request, found, data_key, self.refusals(t, form.refused), 400, text)
            if not text and not form.files:
                return await self.again(request, found, data_key, t("reply_empty"), 400, text)
            items = await checklist.checklist(found)
            item = _chosen_item(form.fields.get("item"), items)
            files = [f if item is None else replace(f, upload_item=item) for f in form.files]
            body = await self.deps.in_crypto_pool(seal_item, data_key, store.REPLY_FILENAME, "text/plain",
                                                  text.encode())
            await store.save(self.deps, found, text=body, files=files, now=self.deps.clock())
        return RedirectResponse(f"/r/{request.path_params['token']}?sent=1", status_code=303)

    def refusals(self, t: Translator, refused: list[uploads.Refused]) -> str:
        lines = [t(f"reply_refused_{r.reason}", name=r.filename, count=uploads.MAX_FILES) for r in refused]
        return " ".join(lines + [t("reply_nothing_sent")])

    async def again(self, request: Request, found: PaymentRequest, data_key: bytes, notice: str, status: int,
                    text: str) -> Response:
        """The message page again, saying what was wrong, the text as typed."""
        return await self.pages.message_page(request, found, data_key, reply_error=notice, draft=text,
                                             status=status)


def _chosen_item(value: str | None, items: list[checklist.Item]) -> int | None:
    """The checklist line the client said the files answer: one of its
    lines, or none ("something else", or no checklist). A form that does not
    say (no such field) answers the first line still waiting, as the form's
    own choice does."""
    if value is None:
        return checklist.first_outstanding(items)
    if value.isdigit() and int(value) < len(items):
        return int(value)
    return None
