"""/r/<token>/pay and /r/<token>/paid: the client pays, and is thanked.

``GET /pay`` (only for a browser that unlocked the request) shows the
amount and what each kind of card costs (web/checkout.py), then the
provider's checkout:

* ``sandbox`` (--demo, CLIENTTRACK_PAYMENTS=sandbox): a plain form marked
  TEST, no JavaScript, with a ``card_number`` field, posting back here;
* ``stripe``: the Payment Element (Stripe.js and static/pay-stripe.js). The
  script turns what the client typed into a ConfirmationToken and posts it
  here; the server confirms the request's one PaymentIntent, with the amount
  the card's type allows (the fee rules);
* no provider: the page says online payment is not set up yet and whom to
  write to (the message page does not offer the link at all then).

``POST /pay`` runs :func:`gateway.payments.ledger.pay`, the one place a
request's status changes. A decline shows the form again (the request
stays payable); an approval goes to /paid. A paid request is never paid
again: /pay sends it to /paid.

``GET /paid`` says "You paid $X to <Firm>" with the reference. When no
webhook has told us yet, it asks the provider itself (ledger.reconcile) and
says "processing" while the bank decides. A browser that comes back from a
redirect payment (Klarna) arrives without its session cookie (SameSite=
Strict is not sent on a cross-site navigation): it still gets the payment
recorded and a short "received" page, without the receipt's details.

Importing nothing into client.py: ``routes()`` adds ``online_payment`` to
the templates' globals, which the message page uses to offer the link.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.core.models import PaymentRequest, RequestKind
from gateway.payments import ledger
from gateway.payments.provider import (
    PAID_FAMILY,
    AlreadyPaid,
    NotPayable,
    PayAttempt,
    PaymentError,
    PaymentProvider,
    PaymentsNotSetUp,
    ProviderError,
)
from gateway.payments.sandbox import check_card
from web import checkout, security
from web.client import ClientPages, small_form, translator

STRIPE_JS = "https://js.stripe.com/v3/"


def routes(pages: ClientPages) -> list[Route]:
    pay = Pay(pages)
    pages.templates.env.globals["online_payment"] = pay.offered
    return [
        Route("/r/{token}/pay", pay.show, methods=["GET"]),
        Route("/r/{token}/pay", pay.submit, methods=["POST"]),
        Route("/r/{token}/paid", pay.paid, methods=["GET"]),
    ]


def _approved_total(value: object) -> int | None:
    """The total the client approved, as the page posts it (minor units)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _purpose(found: PaymentRequest) -> str:
    return f"pay:{found.token_hash}"


class Pay:
    def __init__(self, pages: ClientPages) -> None:
        self.pages = pages
        self.deps = pages.deps

    @property
    def provider(self) -> PaymentProvider:
        return self.deps.payments

    def offered(self, found: PaymentRequest) -> bool:
        """For the message page: is there a pay link to offer at all?"""
        return checkout.online_payment(self.provider, found.firm)

    # -- pages -------------------------------------------------------------------------

    def _render(self, request: Request, name: str, context: dict, *, status: int = 200,
                headers: dict | None = None) -> Response:
        return self.pages.templates.TemplateResponse(request, name, context, status_code=status, headers=headers)

    def _base(self, request: Request, found: PaymentRequest) -> dict:
        # The request's summary (firm, invoice, amount, expiry), as on the message page.
        return {**self.pages._summary(request, found), "contact": found.sender}

    def unavailable(self, request: Request, found: PaymentRequest, *, message: str = "",
                    status: int = 200) -> Response:
        """No online payment here: say so, and whom to write to instead."""
        t = translator(request)
        context = {**self._base(request, found),
                   "message": message or t("pay_unavailable", firm=found.firm.name)}
        return self._render(request, "pages/pay.html", context, status=status)

    def checkout_page(self, request: Request, found: PaymentRequest, *, error: str = "",
                      province: str | None = None, status: int = 200,
                      confirm: checkout.CardTotal | None = None, card_number: str = "") -> Response:
        t = translator(request)
        provider = self.provider
        stripe = provider.name == "stripe"
        form_token = self.pages.csrf.for_form(request, _purpose(found))
        context = {
            **self._base(request, found),
            "disclosure": checkout.disclosure(t, found, found.firm, provider.config, province=province,
                                              wallets=stripe),
            "province": province or "",
            "provinces": [(code, t(key)) for code, key in checkout.PROVINCE_CHOICES],
            "error": error,
            "csrf_token": form_token.value,
            # The sandbox's second step: this card's total, to approve or change the card.
            "confirm": confirm,
            "card_number": card_number,
        }
        headers = None
        if stripe:
            template = "pages/pay_stripe.html"
            context.update(stripe_js=STRIPE_JS, publishable_key=provider.config.publishable_key,
                           account=found.firm.stripe_account_id,
                           stripe_locale="fr-CA" if t.lang == "fr" else "en",
                           return_url=self._paid_url(request, absolute=True))
            https = self.deps.settings.public_base_url.startswith("https:")
            headers = {"content-security-policy": security.csp(stripe=True, https=https)}
        else:
            template = "pages/pay_sandbox.html"
        response = self._render(request, template, context, status=status, headers=headers)
        self.pages.csrf.remember(response, form_token)
        return response

    def notice(self, request: Request, title: str, message: str, status: int) -> Response:
        return self._render(request, "pages/notice.html", {"title": title, "message": message}, status=status)

    def _paid_url(self, request: Request, *, absolute: bool = False) -> str:
        path = f"/r/{request.path_params['token']}/paid"
        return self.deps.settings.public_base_url.rstrip("/") + path if absolute else path

    def _to_paid(self, request: Request) -> Response:
        return RedirectResponse(self._paid_url(request), status_code=303)

    def _refusal(self, request: Request, found: PaymentRequest, exc: PaymentError) -> Response:
        """The page for a payment step the provider refused (not a decline)."""
        t = translator(request)
        firm = found.firm.name
        if isinstance(exc, PaymentsNotSetUp):
            return self.unavailable(request, found)
        if isinstance(exc, NotPayable):
            key = "pay_checking" if found.flagged else "pay_not_payable"
            return self.notice(request, t("pay_title", firm=firm), t(key, firm=firm), 409)
        return self.notice(request, t("busy_title"), t("pay_try_later"), 503)

    # -- GET /pay ------------------------------------------------------------------------

    def _to_message(self, request: Request) -> Response:
        # A secure message (secure@) has nothing to pay: its page is the message.
        return RedirectResponse(f"/r/{request.path_params['token']}", status_code=303)

    async def show(self, request: Request) -> Response:
        opened = await self.pages.unlocked(request)
        if isinstance(opened, Response):
            return opened
        found, _ = opened
        if found.kind is RequestKind.MESSAGE:
            return self._to_message(request)
        if found.status in PAID_FAMILY:
            return self._to_paid(request)
        if not self.offered(found):
            return self.unavailable(request, found)
        try:
            # The request's one intent, made on first use and reused after.
            await self.provider.create_or_get_intent(found)
        except AlreadyPaid:
            await self._reconcile(found)
            return self._to_paid(request)
        except PaymentError as exc:
            return self._refusal(request, found, exc)
        province = checkout.read_province(request.query_params.get("province"))
        return self.checkout_page(request, found, province=province)

    # -- POST /pay -----------------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        form = await small_form(request)
        if form is None:
            return Response(status_code=413)
        wants_json = "application/json" in request.headers.get("accept", "")
        opened = await self.pages.unlocked(request)
        t = translator(request)  # in the request's language, once it is found
        if isinstance(opened, Response):
            if wants_json:
                # Not open in this browser any more (303 to the form), or gone or unknown.
                key = "form_expired" if opened.status_code == 303 else "gone_title"
                return JSONResponse({"outcome": "error", "message": t(key),
                                     "next": f"/r/{request.path_params['token']}"}, status_code=403)
            return opened
        found, _ = opened
        if found.kind is RequestKind.MESSAGE:
            if wants_json:
                return JSONResponse({"outcome": "error", "message": t("pay_not_payable", firm=found.firm.name)},
                                    status_code=409)
            return self._to_message(request)
        if not self.pages.csrf.valid(request, form, _purpose(found)):
            if wants_json:
                return JSONResponse({"outcome": "error", "message": t("refused")}, status_code=403)
            return self.pages.refused(request)
        if found.status in PAID_FAMILY:
            return self._json("succeeded", request) if wants_json else self._to_paid(request)
        if not self.offered(found):
            return self.unavailable(request, found, status=409)
        province = checkout.read_province(form.get("province"))
        approved = _approved_total(form.get("approved_total"))
        if self.provider.name == "stripe":
            return await self._pay_stripe(request, found, form.get("confirmation_token"), province, wants_json,
                                          approved)
        return await self._pay_sandbox(request, found, form.get("card_number"), province, approved)

    async def _pay_sandbox(self, request: Request, found: PaymentRequest, card_number: object,
                           province: str | None, approved: int | None) -> Response:
        t = translator(request)
        typed = card_number.strip()[:40] if isinstance(card_number, str) else ""
        if not typed:
            return self.checkout_page(request, found, error=t("pay_card_missing"), province=province, status=400)
        try:
            outcome = await ledger.pay(found, PayAttempt(card_number=typed, province=province,
                                                         approved_total=approved), self.provider, self.deps)
        except AlreadyPaid:
            return self._to_paid(request)
        except PaymentError as exc:
            return self._refusal(request, found, exc)
        if outcome.outcome == "succeeded":
            return self._to_paid(request)
        if outcome.outcome == "confirm_amount":
            confirm = checkout.card_total(t, found, found.firm, self.provider.config, outcome.quote, test=True)
            return self.checkout_page(request, found, province=province, confirm=confirm, card_number=typed)
        known = check_card(typed).decline_code != "card_not_recognised"
        error = t("pay_declined") if known else t("pay_not_recognised")
        # The form again, the number not kept: the client types another card.
        return self.checkout_page(request, found, error=error, province=province, status=402)

    async def _pay_stripe(self, request: Request, found: PaymentRequest, token: object, province: str | None,
                          wants_json: bool, approved: int | None) -> Response:
        t = translator(request)
        attempt = PayAttempt(confirmation_token=token if isinstance(token, str) else "", province=province,
                             return_url=self._paid_url(request, absolute=True), approved_total=approved)
        try:
            outcome = await ledger.pay(found, attempt, self.provider, self.deps)
        except AlreadyPaid:
            return self._json("succeeded", request) if wants_json else self._to_paid(request)
        except (PaymentsNotSetUp, NotPayable) as exc:
            if not wants_json:
                return self._refusal(request, found, exc)
            key = "pay_checking" if found.flagged else "pay_not_payable"
            return JSONResponse({"outcome": "error", "message": t(key, firm=found.firm.name)}, status_code=409)
        except ProviderError:
            if not wants_json:
                return self.notice(request, t("busy_title"), t("pay_try_later"), 503)
            return JSONResponse({"outcome": "error", "message": t("pay_try_later")}, status_code=503)
        except PaymentError:
            # No ConfirmationToken: the script did not run (or was bypassed).
            if not wants_json:
                return self.checkout_page(request, found, error=t("pay_failed"), province=province, status=400)
            return JSONResponse({"outcome": "error", "message": t("pay_failed")}, status_code=400)
        if outcome.outcome == "confirm_amount":
            # Nothing charged: the script shows this card's total, updates the
            # Payment Element to it and pays again once the client approves.
            confirm = checkout.card_total(t, found, found.firm, self.provider.config, outcome.quote)
            if not wants_json:
                return self.checkout_page(request, found, error=confirm.title, province=province, status=409)
            return JSONResponse({"outcome": "confirm_amount", "total_minor": confirm.total_minor,
                                 "title": confirm.title, "detail": confirm.detail, "rule": confirm.rule,
                                 "button": confirm.button})
        if outcome.outcome == "declined":
            message = outcome.message if t.lang == "en" and outcome.message else t("pay_declined")
            if not wants_json:
                return self.checkout_page(request, found, error=message, province=province, status=402)
            return JSONResponse({"outcome": "declined", "message": message}, status_code=402)
        if outcome.outcome == "requires_action":
            # 3-D Secure or a redirect (Klarna): Stripe.js takes the next step with the secret.
            return self._json("requires_action", request, client_secret=outcome.intent.client_secret) \
                if wants_json else self._to_paid(request)
        return self._json(outcome.outcome, request) if wants_json else self._to_paid(request)

    def _json(self, outcome: str, request: Request, **extra: str) -> JSONResponse:
        return JSONResponse({"outcome": outcome, "next": self._paid_url(request), **extra})

    # -- GET /paid -----------------------------------------------------------------------

    async def _reconcile(self, found: PaymentRequest) -> PaymentRequest:
        """The request as it stands once the provider was asked (when no
        webhook has told us yet); unchanged when it cannot be reached."""
        try:
            fresh = await ledger.reconcile(found, self.provider, self.deps)
        except PaymentError:
            return found
        fresh.firm = found.firm
        return fresh

    async def paid(self, request: Request) -> Response:
        token = request.path_params["token"]
        now = self.deps.clock()
        found = await self.pages.find(token)
        self.pages.speak(request, found)
        t = translator(request)
        if found is None:
            return self.pages.not_found(request)
        if found.kind is RequestKind.MESSAGE:
            return self._to_message(request)
        if found.status not in PAID_FAMILY:
            if self.pages.is_gone(found, now):
                return await self.pages.gone(request, found)
            found = await self._reconcile(found)
        opened = await self.pages.sessions.data_key(request, found, now) is not None
        firm = found.firm
        if found.status in PAID_FAMILY:
            if not opened:
                # Back from a redirect without the session cookie: say it
                # worked, and nothing a link alone should not show.
                return self._render(request, "pages/paid_status.html", {
                    **self._base(request, found), "state": "received",
                    "title": t("paid_received_title"), "message": t("paid_received", firm=firm.name)})
            thanks = checkout.thanks(t, found, firm, self.provider.config)
            return self._render(request, "pages/paid.html", {**self._base(request, found), "thanks": thanks})
        if not opened:
            return RedirectResponse(f"/r/{token}", status_code=303)
        if self.provider.name != "stripe" or found.provider != "stripe":
            return RedirectResponse(f"/r/{token}/pay", status_code=303)
        try:
            state = await self.provider.retrieve(found)
        except PaymentError:
            state = None
        if state is not None and state.status in ("processing", "requires_capture"):
            # Look again in a few seconds (a header: no script, no inline anything).
            return self._render(request, "pages/paid_status.html", {
                **self._base(request, found), "state": "processing",
                "title": t("processing_title"), "message": t("processing_body", firm=firm.name)},
                headers={"refresh": "5"})
        return self._render(request, "pages/paid_status.html", {
            **self._base(request, found), "state": "not_paid",
            "title": t("not_paid_title"), "message": t("not_paid_body")})
