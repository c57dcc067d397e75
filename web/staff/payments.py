"""/staff/payments (admin): whether the firm can take payments, Stripe's
onboarding link, and the card-fee terms.

Each change goes through the code its mail command or command line uses:
the onboarding link is connect.start_onboarding (`setup payments`,
`clienttrack firm connect-stripe`), the rate and province are
surcharge.set_terms (`clienttrack firm set`), the network notice is the
`surcharge notice DATE` command itself. The link is shown as a link to
follow, not a redirect: the pages' CSP lets a form lead only to this site.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.models import Firm, Level
from gateway.core.money import MoneyError, format_decimal, to_minor
from gateway.payments import connect, fees, surcharge
from gateway.payments.provider import PaymentError
from web.client import translator
from web.staff.actions import Actions
from web.staff.pages import StaffPages
from web.staff.sessions import SignedIn

PROVINCES = ("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT")


class Payments:
    def __init__(self, pages: StaffPages, actions: Actions) -> None:
        self.pages = pages
        self.actions = actions
        self.deps = pages.deps

    def routes(self) -> list[Route]:
        return [
            Route("/staff/payments", self.show, methods=["GET"]),
            Route("/staff/payments/setup", self.setup, methods=["POST"]),
            Route("/staff/payments/terms", self.terms, methods=["POST"]),
            Route("/staff/payments/notice", self.notice, methods=["POST"]),
        ]

    async def _page(self, request: Request, signed_in: SignedIn, **extra) -> Response:
        t = translator(request)
        firm = await Firm.get(id=signed_in.firm.id)
        config = self.deps.payments.config
        rate, fixed = surcharge.firm_rate(firm, config)
        today = surcharge.local_day(firm, self.deps.clock())
        start = surcharge.starts_on(firm)
        context = {
            "firm": firm,
            "provider": self.deps.settings.payment_provider,
            "rate": f"{(rate * 100).normalize():f}%",
            "rate_is_default": not firm.card_fee_rate,
            "fixed": format_decimal(fixed, firm.currency),
            "provinces": [(code, fees.province_name(code, t.lang)) for code in PROVINCES],
            "notice": t.date(firm.surcharge_notice_date) if firm.surcharge_notice_date else "",
            "notice_value": firm.surcharge_notice_date.isoformat() if firm.surcharge_notice_date else "",
            "fee_from": t.date(start) if start else "",
            "fee_works": surcharge.may_surcharge(firm, today),
            "exempt": fees.normalise_province(firm.province) in fees.rule_for(firm.country).exempt_regions,
            "today": today.isoformat(),
            "link": "", "link_error": "",
            **extra,
        }
        return await self.pages.render(request, signed_in, "pages/staff/payments.html", context,
                                       section="/staff/payments")

    async def show(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.ADMIN)
        if isinstance(signed_in, Response):
            return signed_in
        return await self._page(request, signed_in)

    async def setup(self, request: Request) -> Response:
        got = await self.pages.posted(request, Level.ADMIN)
        if isinstance(got, Response):
            return got
        signed_in, _ = got
        firm = signed_in.firm
        try:
            link = await connect.start_onboarding(firm, self.deps.payments,
                                                  base_url=self.deps.settings.public_base_url,
                                                  master_key=self.deps.master_key, now=self.deps.clock(),
                                                  actor=signed_in.email)
        except PaymentError as exc:
            return await self._page(request, signed_in, link_error=str(exc))
        return await self._page(request, signed_in, link=link.url)

    async def terms(self, request: Request) -> Response:
        got = await self.pages.posted(request, Level.ADMIN)
        if isinstance(got, Response):
            return got
        signed_in, form = got
        t = translator(request)
        firm = await Firm.get(id=signed_in.firm.id)
        try:
            fixed_text = form.get("fixed", "")
            fixed = to_minor(fixed_text.lstrip("$"), firm.currency) if fixed_text else None
            await surcharge.set_terms(firm, now=self.deps.clock(), actor=signed_in.email,
                                      rate=form.get("rate", ""), fixed_minor=fixed, province=form.get("province"))
        except (MoneyError, surcharge.RateError) as exc:
            return await self.pages.done(signed_in, "/staff/payments", False, t("staff_not_done", reason=str(exc)))
        return await self.pages.done(signed_in, "/staff/payments", True, t("staff_payments_terms_saved"))

    async def notice(self, request: Request) -> Response:
        got = await self.pages.posted(request, Level.ADMIN)
        if isinstance(got, Response):
            return got
        signed_in, form = got
        t = translator(request)
        done = await self.actions.run(signed_in, "surcharge", ["notice", form.get("notice", "")])
        if done.refused is not None:
            return await self.pages.done(signed_in, "/staff/payments", False,
                                         t("staff_not_done", reason=str(done.refused)))
        return await self.pages.done(signed_in, "/staff/payments", True, t("staff_payments_notice_saved"))
