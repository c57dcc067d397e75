"""The client's pages under /r/<token>.

GET shows the unlock form, or the message once this browser has unlocked
it; POST unlocks; /files/<n> downloads an attachment; /lock ends the
session; /pay is the payment page (web/pay.py).

Guessing is resisted in layers, cheapest first: the CSRF check, a
per-address throttle, the per-request lock and hourly cap (in the
database), then Argon2id in the crypto pool behind a gate that bounds how
many derivations run or wait. An unknown token costs what a known one does:
the same lookups on GET, and a derivation on POST.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import parse_qsl

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from tortoise.transactions import in_transaction

from gateway import vault
from gateway.core import events
from gateway.core.models import Firm, PaymentRequest, RequestStatus, SealedFile
from gateway.core.settings import zone
from gateway.deps import Deps
from gateway.outbound.clientmail import can_reply
from gateway.replies import checklist, reading
from gateway.vault import sealed
from web import downloads, lockout, notify, uploads
from web.csrf import Csrf
from web.formcache import FormCache, RenderedPage
from web.i18n import DEFAULT, LANGUAGES, Translator
from web.limits import Limits
from web.sessions import Sessions
from web.throttle import AddressThrottle, Busy, DerivationGate

# Our forms hold a password and a CSRF token: anything bigger is not ours.
MAX_FORM_BYTES = 8192
GONE = (RequestStatus.CANCELLED, RequestStatus.EXPIRED)


def translator(request: Request) -> Translator:
    return Translator(getattr(request.state, "lang", DEFAULT))


async def small_form(request: Request) -> FormData | None:
    """The url-encoded form, or None past MAX_FORM_BYTES or 16 fields (read
    no further)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        return FormData(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=16))
    except ValueError:
        return None


def reply_purpose(token_hash: str) -> str:
    """The reply form's CSRF purpose (the form is read by web/replies.py)."""
    return f"reply:{token_hash}"


def _restates_invoice(title: str, invoice: str) -> bool:
    """True for a title like "Invoice 1042" beside invoice 1042: shown
    twice, it would read as two different things."""
    if not invoice:
        return False
    words = re.sub(r"[^0-9a-z]", "", title.casefold())
    number = re.sub(r"[^0-9a-z]", "", invoice.casefold())
    return words in (number, f"invoice{number}", f"inv{number}", f"facture{number}")


@dataclass(frozen=True)
class Tried:
    """A password tried: the data key, or why not (locked until, tries
    left, or too busy to try now), and the time it was decided."""

    now: datetime
    data_key: bytes | None = None
    locked_until: datetime | None = None
    tries_left: int = 0
    busy: bool = False


class ClientPages:
    def __init__(self, deps: Deps, templates: Jinja2Templates, limits: Limits,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        settings = deps.settings
        https = settings.public_base_url.startswith("https:")
        self.deps = deps
        self.templates = templates
        self.limits = limits
        self.csrf = Csrf(deps.master_key, base_url=settings.public_base_url, secure=https)
        self.sessions = Sessions(deps.master_key, idle=limits.session_idle, secure=https)
        self.throttle = AddressThrottle(limits.address_burst, limits.address_refill_seconds, limits.address_table_size)
        self.gate = DerivationGate(limits.derivation_slots, limits.max_waiting)
        self.form_cache = FormCache(limits.form_page_seconds, limits.form_page_entries, monotonic)
        # Stands for the CSRF token in a kept page; random, so no firm name or hint can contain it.
        self._token_mark = secrets.token_hex(16)
        # What an unknown token's try costs: a derivation like a real one.
        self._decoy = vault.new_kdf_params(settings.kdf_memory_kib, settings.kdf_iterations)

    def routes(self) -> list[Route]:
        return [
            Route("/r/{token}", self.show, methods=["GET"]),
            Route("/r/{token}", self.unlock, methods=["POST"]),
            Route("/r/{token}/files/{position:int}", self.download, methods=["GET"]),
            Route("/r/{token}/lock", self.lock, methods=["POST"]),
        ]

    # -- looking a request up -------------------------------------------------

    async def find(self, token: str) -> PaymentRequest | None:
        """The request with its firm (not its staff: see with_staff).

        Raw SQL: on the page a flood would hit, building this query through
        the ORM cost ten times running it. Inlining is safe here because a
        token hash is always 64 hex digits and a firm id an int. An unknown
        token pays for the firm lookup too, so it answers in the same time.
        """
        token_hash = vault.token_hash(token)
        found = await PaymentRequest.raw(f"SELECT * FROM payment_request WHERE token_hash = '{token_hash}'")
        firm_id = found[0].firm_id if found else 0
        firm = await Firm.raw(f"SELECT * FROM firm WHERE id = {int(firm_id)}")
        if not found:
            return None
        found[0].firm = firm[0]
        return found[0]

    def speak(self, request: Request, found: PaymentRequest | None) -> None:
        """Pages about a request are in its language (lang=, or its firm's)
        unless the client chose one with the switch."""
        if found is not None and found.lang in LANGUAGES and not getattr(request.state, "lang_chosen", False):
            request.state.lang = found.lang

    async def with_staff(self, found: PaymentRequest) -> PaymentRequest:
        """Loads who sent the request: the pages that name them, and the
        notices to them, need it; the unlock form does not."""
        await found.fetch_related("staff")
        return found

    def is_gone(self, found: PaymentRequest, now: datetime) -> bool:
        return found.status in GONE or found.expires_at <= now

    def is_closed(self, found: PaymentRequest, now: datetime) -> bool:
        """Gone, or its documents deleted (retention): either way there is
        nothing to unlock, and the page says whom to ask."""
        return found.documents_removed_at is not None or self.is_gone(found, now)

    async def opened(self, request: Request, now: datetime) -> tuple[PaymentRequest, bytes | None] | Response:
        """The request, and its data key if this browser has it open (else
        None); or the page to answer with (not found, gone)."""
        found = await self.find(request.path_params["token"])
        self.speak(request, found)
        if found is None:
            return self.not_found(request)
        if self.is_closed(found, now):
            return await self.gone(request, found)
        return found, await self.sessions.data_key(request, found, now)

    async def unlocked(self, request: Request) -> tuple[PaymentRequest, bytes] | Response:
        """The request and its data key if this browser has it open; else
        the page to answer with (not found, gone, or back to the form)."""
        opened = await self.opened(request, self.deps.clock())
        if isinstance(opened, Response):
            return opened
        found, data_key = opened
        if data_key is None:
            return RedirectResponse(f"/r/{request.path_params['token']}", status_code=303)
        return found, data_key

    # -- pages ----------------------------------------------------------------

    def _summary(self, request: Request, found: PaymentRequest) -> dict:
        t = translator(request)
        expires = found.expires_at.astimezone(zone(found.firm.timezone)).date()
        return {
            "req": found,
            "regarding": "" if _restates_invoice(found.title, found.invoice) else found.title,
            "token": request.path_params["token"],
            "amount": t.amount(found.amount_minor, found.currency),
            "expires": t.date(expires),
        }

    def not_found(self, request: Request) -> Response:
        return self.templates.TemplateResponse(request, "pages/not_found.html", {}, status_code=404)

    async def gone(self, request: Request, found: PaymentRequest) -> Response:
        t = translator(request)
        await self.with_staff(found)
        tz = zone(found.firm.timezone)
        expired_on = t.date(found.expires_at.astimezone(tz).date())
        removed_on = t.date(found.documents_removed_at.astimezone(tz).date()) if found.documents_removed_at else ""
        paid_on = t.date(found.paid_at.astimezone(tz).date()) if found.paid_at else ""
        # Whom to ask for a new link: the staff member, or the address that sent it.
        contact = found.staff.email if found.staff else found.sender
        return self.templates.TemplateResponse(
            request, "pages/gone.html",
            {"req": found, "expired_on": expired_on, "removed_on": removed_on, "paid_on": paid_on, "contact": contact},
            status_code=410,
        )

    def form_page(self, request: Request, found: PaymentRequest, *, notice: str = "", status: int = 200,
                  retry_after: int | None = None, good_news: bool = False) -> Response:
        form_token = self.csrf.for_form(request, f"unlock:{found.token_hash}")
        context = {
            **self._summary(request, found),
            "notice": notice,
            "good_news": good_news,
            "csrf_token": form_token.value,
        }
        headers = {"retry-after": str(retry_after)} if retry_after else None
        response = self.templates.TemplateResponse(request, "pages/unlock.html", context, status_code=status,
                                                   headers=headers)
        self.csrf.remember(response, form_token)
        return response

    async def message_page(self, request: Request, found: PaymentRequest, data_key: bytes, *,
                           reply_error: str = "", draft: str = "", status: int = 200) -> Response:
        t = translator(request)
        files = await SealedFile.filter(request_id=found.id, reply_id__isnull=True).order_by("position")
        body = next((f for f in files if f.is_body), None)
        text = (await sealed.read_all(body, data_key, self.deps.blobs)).decode("utf-8", "replace").strip() \
            if body else ""
        form_token = self.csrf.for_form(request, f"lock:{found.token_hash}")
        paid_on = ""
        if found.paid_at is not None:
            paid_on = t.date(found.paid_at.astimezone(zone(found.firm.timezone)).date())
        context = {
            **self._summary(request, found),
            "body": text,
            "files": [f for f in files if not f.is_body],
            "paid_on": paid_on,
            "csrf_token": form_token.value,
            **await self._conversation(request, found, data_key, reply_error=reply_error, draft=draft),
        }
        response = self.templates.TemplateResponse(request, "pages/message.html", context, status_code=status)
        self.csrf.remember(response, form_token)
        return response

    async def _conversation(self, request: Request, found: PaymentRequest, data_key: bytes, *, reply_error: str,
                            draft: str) -> dict:
        """The message page's reply part (pages/_reply.html): for a secure
        message or a request that asks for documents, the checklist, what
        the client sent so far and the form to send more."""
        if not can_reply(found):
            return {"can_reply": False}
        t = translator(request)
        items = await checklist.checklist(found)
        sent = await reading.opened(found, data_key, self.deps.blobs)
        firm_zone = zone(found.firm.timezone)
        return {
            "can_reply": True,
            "checklist": items,
            "first_outstanding": checklist.first_outstanding(items),
            "replies": sent,
            "reply_dates": [t.date(r.at.astimezone(firm_zone).date()) for r in sent],
            "sent": request.query_params.get("sent") == "1" and not reply_error,
            "reply_error": reply_error,
            "draft": draft,
            # The reply form's token is checked as the form streams in (web/replies.py).
            # (An unlocked browser has the CSRF cookie already: the unlock needed it.)
            "reply_csrf": self.csrf.for_form(request, reply_purpose(found.token_hash)).value,
            "reply_accept": uploads.ACCEPT,
            "reply_max": t.size(self.deps.settings.reply_max_size),
        }

    # -- endpoints ------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        now = self.deps.clock()
        if not self.sessions.has_cookie(request):
            return await self.form_for_anyone(request, now)
        opened = await self.opened(request, now)
        if isinstance(opened, Response):
            return opened
        found, data_key = opened
        if data_key is None:
            return self.form_page(request, found)
        return await self.message_page(request, found, data_key)

    async def form_for_anyone(self, request: Request, now: datetime) -> Response:
        """The unlock form for a browser that has not unlocked (or 404):
        the same page for everyone but its CSRF token, so it is kept a
        few seconds (web/formcache.py)."""
        token = request.path_params["token"]
        token_hash = vault.token_hash(token)
        # The same inputs make the same page: the request's own language
        # applies when the client chose none (speak).
        key = (token_hash, translator(request).lang, getattr(request.state, "lang_chosen", False))
        page = self.form_cache.get(key)
        if page is None or not page.fits(now):
            found = await self.find(token)
            self.speak(request, found)
            if found is not None and self.is_closed(found, now):
                return await self.gone(request, found)
            page = self._render_blank_form(request, found) if found else self._render_not_found(request)
            self.form_cache.put(key, page)
        if page.after is None:
            return Response(page.before, status_code=page.status, media_type="text/html")
        form_token = self.csrf.for_form(request, f"unlock:{token_hash}")
        body = page.before + form_token.value.encode() + page.after
        response = Response(body, status_code=page.status, media_type="text/html")
        self.csrf.remember(response, form_token)
        return response

    def _render_blank_form(self, request: Request, found: PaymentRequest) -> RenderedPage:
        context = {**self._summary(request, found), "notice": "", "good_news": False, "csrf_token": self._token_mark}
        body = self.templates.TemplateResponse(request, "pages/unlock.html", context).body
        before, _, after = bytes(body).partition(self._token_mark.encode())
        return RenderedPage(200, before, after, found.expires_at)

    def _render_not_found(self, request: Request) -> RenderedPage:
        return RenderedPage(404, bytes(self.not_found(request).body), None, None)

    async def unlock(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        now = self.deps.clock()
        found = await self.find(token)
        self.speak(request, found)
        t = translator(request)
        if found is not None and self.is_closed(found, now):
            return await self.gone(request, found)
        if not self.csrf.valid(request, form, f"unlock:{vault.token_hash(token)}"):
            if found is None:
                return self.not_found(request)
            return self.form_page(request, found, notice=t("form_expired"), status=403)
        password = form.get("password")
        if not isinstance(password, str) or not password:
            if found is None:
                return self.not_found(request)
            return self.form_page(request, found, notice=t("empty_password"), status=400)

        address = request.client.host if request.client else ""
        wait = self.throttle.take(address, now.timestamp())
        if wait:
            if found is None:
                return self.not_found(request)
            return self.form_page(request, found, notice=t("too_fast", wait=t.wait(wait)), status=429,
                                  retry_after=int(wait))
        if found is None:
            try:
                await self.gate.run(self.deps.in_crypto_pool, vault.derive_kek, password, self._decoy)
            except Busy:
                return self.busy(request)
            return self.not_found(request)
        return await self._try_password(request, found, password, address, now)

    async def check_password(self, found: PaymentRequest, password: str, address: str, now: datetime) -> Tried:
        """Try the request's password within its lock (web/lockout.py) and
        the derivation gate; the data key when right. The client's unlock
        and the staff member's reply page (web/staff_replies.py) share it:
        one password, one budget of guesses."""
        refused = await lockout.reserve(found.id, now, self.limits)
        if refused is not None:
            return Tried(now, locked_until=refused.until)
        try:
            data_key = await self.gate.run(self.deps.in_crypto_pool, sealed.unlock, found, password)
        except Busy:
            await lockout.release(found.id)
            return Tried(now, busy=True)
        except vault.WrongPassword:
            now = self.deps.clock()
            wrong = await lockout.record_wrong(self.deps, found, now, self.limits)
            return Tried(now, locked_until=wrong.locked_until, tries_left=wrong.tries_left)
        now = self.deps.clock()
        await lockout.record_right(found.id)
        self.throttle.give_back(address, now.timestamp())
        return Tried(now, data_key=data_key)

    async def _try_password(self, request: Request, found: PaymentRequest, password: str, address: str,
                            now: datetime) -> Response:
        t = translator(request)
        await self.with_staff(found)
        tried = await self.check_password(found, password, address, now)
        if tried.busy:
            return self.busy(request)
        if tried.locked_until is not None:
            return self.locked_page(request, found, tried.locked_until, tried.now)
        if tried.data_key is None:
            return self.form_page(request, found, notice=t.plural("wrong", tried.tries_left), status=403)
        session_id = await self.sessions.start(request, found, tried.data_key, tried.now)
        await self._first_view(found, tried.now)
        response = RedirectResponse(f"/r/{request.path_params['token']}", status_code=303)
        self.sessions.set_cookie(response, session_id)
        return response

    def locked_page(self, request: Request, found: PaymentRequest, until: datetime, now: datetime) -> Response:
        t = translator(request)
        seconds = (until - now).total_seconds()
        notice = f"{t('locked', wait=t.wait(seconds))} {t('locked_help', firm=found.firm.name)}"
        return self.form_page(request, found, notice=notice, status=429, retry_after=max(1, int(seconds)))

    def busy(self, request: Request) -> Response:
        t = translator(request)
        return self.templates.TemplateResponse(
            request, "pages/notice.html", {"title": t("busy_title"), "message": t("busy")}, status_code=503,
            headers={"retry-after": str(Busy.retry_after)},
        )

    def refused(self, request: Request) -> Response:
        t = translator(request)
        return self.templates.TemplateResponse(
            request, "pages/notice.html", {"title": t("refused_title"), "message": t("refused")}, status_code=403
        )

    async def _first_view(self, found: PaymentRequest, now: datetime) -> None:
        """The first unlock marks the request viewed and tells the staff
        member, if the firm wants to know; the conditional update makes
        sure that happens once, whichever browser gets there first. A
        request marked bounced that is opened did arrive after all (the
        report was wrong, or forged by whoever saw its bounce address)."""
        async with in_transaction():
            first = await PaymentRequest.filter(id=found.id, status__in=(RequestStatus.SENT, RequestStatus.BOUNCED)) \
                .update(status=RequestStatus.VIEWED, viewed_at=now)
            if not first:
                return
            await events.record(now, found.client_email, "request.viewed", firm=found.firm, request=found)
            if found.firm.notify_on_view:
                await notify.viewed(self.deps, found, now)
        self.deps.outbox_wake.set()

    async def download(self, request: Request) -> Response:
        opened = await self.unlocked(request)
        if isinstance(opened, Response):
            return opened
        found, data_key = opened
        file = await SealedFile.get_or_none(
            request_id=found.id, position=request.path_params["position"], is_body=False
        )
        if file is None:
            return self.not_found(request)
        return downloads.response(file, data_key, self.deps.blobs)

    async def lock(self, request: Request) -> Response:
        """Lock the message again (end this browser's session)."""
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        found = await self.find(request.path_params["token"])
        self.speak(request, found)
        t = translator(request)
        if found is None:
            return self.not_found(request)
        if not self.csrf.valid(request, form, f"lock:{found.token_hash}"):
            return self.refused(request)
        await self.sessions.end(request)
        response = self.form_page(request, found, notice=t("locked_again"), good_news=True)
        self.sessions.clear_cookie(response)
        return response
