"""The requests table (/staff/) and a request's page (/staff/requests/<id>).

Level send sees its own requests, report and admin the firm's: the same
rule as the `status` command, applied to the table's query and to each
request's URL (a colleague's request is a 404 to a send-level member,
whatever number they type).
"""

from __future__ import annotations

from typing import NamedTuple
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.commands.cancel import CANCELLABLE
from gateway.commands.refund import REFUNDABLE
from gateway.commands.remind import REMINDABLE
from gateway.core.models import Event, Level, PaymentRequest, RequestKind, SealedFile, Staff
from gateway.core.settings import zone
from web.client import translator
from web.i18n import Translator
from web.staff import format as fmt
from web.staff import table
from web.staff.pages import StaffPages
from web.staff.sessions import SignedIn


def own_only(signed_in: SignedIn) -> str:
    """The sender the member is held to ("" = the whole firm), as `status` does."""
    return "" if signed_in.level.allows(Level.REPORT) else signed_in.email


def may_act(signed_in: SignedIn, request: PaymentRequest) -> bool:
    """remind and cancel: one's own requests, or any for an admin (the commands' rule)."""
    return signed_in.level.allows(Level.ADMIN) or request.sender == signed_in.email


def fee_text(t: Translator, request: PaymentRequest) -> str:
    if request.fee_minor:
        return t.amount_short(request.fee_minor, request.currency)
    return t("staff_fee_client") if request.pass_fee else ""


class Row(NamedTuple):
    """A request as the table shows it. Attributes, not a dict: a template
    reads a dict's keys only after failing to read them as attributes,
    and that failure cost more than the rest of a row."""

    id: int
    href: str
    client: str
    invoice: str
    title: str
    staff: str
    amount: str
    currency: str
    fee: str
    status: str
    status_label: str
    sent: str
    viewed: str
    paid: str


def row_view(t: Translator, request: PaymentRequest, tz: ZoneInfo) -> Row:
    # A secure message (secure@) asks for no money: it says so instead of an amount.
    message = request.kind is RequestKind.MESSAGE
    return Row(request.id, f"/staff/requests/{request.id}", request.client_email, request.invoice, request.title,
               request.sender, t("staff_secure_message") if message else t.amount_short(request.amount_minor,
                                                                                       request.currency),
               "" if message else request.currency,
               fee_text(t, request), request.status.value, fmt.status(t, request.status),
               fmt.short_date(t, request.created_at, tz), fmt.short_date(t, request.viewed_at, tz),
               fmt.short_date(t, request.paid_at, tz))


class RequestPages:
    def __init__(self, pages: StaffPages) -> None:
        self.pages = pages
        self.deps = pages.deps

    def routes(self) -> list[Route]:
        return [
            Route("/staff/", self.table, methods=["GET"]),
            Route("/staff/requests/{id:int}", self.one, methods=["GET"]),
        ]

    async def table(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.SEND)
        if isinstance(signed_in, Response):
            return signed_in
        t = translator(request)
        firm = signed_in.firm
        tz = zone(firm.timezone)
        sees_all = signed_in.level.allows(Level.REPORT)
        filters, wrong = table.read_filters(request.query_params, may_pick_staff=sees_all)
        try:
            period = table.period_of(filters.period, tz, self.deps.clock())
        except table.PeriodError:
            wrong.append("period")
            period = None
        found = await table.page(firm.id, filters, sender=filters.staff or own_only(signed_in), period=period)
        colleagues = []
        if sees_all:
            found_staff = await table.records(Staff.filter(firm_id=firm.id).order_by("email").values_list("email"))
            colleagues = [record[0] for record in found_staff]
        context = {
            "rows": [row_view(t, r, tz) for r in found.rows],
            "filters": filters,
            "wrong": wrong,
            "older": filters.query(after=found.older, before=None) if found.older else "",
            "newer": filters.query(before=found.newer, after=None) if found.newer else "",
            "sees_all": sees_all,
            "colleagues": colleagues,
            "groups": list(table.GROUPS),
            "periods": table.PERIODS,
            "custom_period": filters.period if filters.period and filters.period not in table.PERIODS else "",
        }
        return await self.pages.render(request, signed_in, "pages/staff/requests.html", context, section="/staff/")

    async def find(self, signed_in: SignedIn, request_id: int) -> PaymentRequest | None:
        """The request if this member may see it; None looks the same as no such request."""
        query = PaymentRequest.filter(id=request_id, firm_id=signed_in.firm.id)
        if own_only(signed_in):
            query = query.filter(sender=signed_in.email)
        return await query.first()

    async def one(self, request: Request) -> Response:
        signed_in = await self.pages.member(request, Level.SEND)
        if isinstance(signed_in, Response):
            return signed_in
        found = await self.find(signed_in, request.path_params["id"])
        if found is None:
            return await self.pages.not_found(request, signed_in)
        return await self.pages.render(request, signed_in, "pages/staff/request.html",
                                       await self.details(request, signed_in, found), section="/staff/")

    async def details(self, request: Request, signed_in: SignedIn, found: PaymentRequest) -> dict:
        t = translator(request)
        tz = zone(signed_in.firm.timezone)
        now = self.deps.clock()
        history = await Event.filter(request_id=found.id).order_by("at", "id")
        # The staff's own files: a client's replies are read with the request's password (web/staff_replies.py).
        files = await SealedFile.filter(request_id=found.id, is_body=False, reply_id__isnull=True) \
            .order_by("position") \
            .values("filename", "size")
        acts = may_act(signed_in, found)
        total = found.total_minor if found.total_minor is not None else found.amount_minor + (found.fee_minor or 0)
        return {
            "req": found,
            "row": row_view(t, found, tz),
            "total": t.amount(total, found.currency),
            "refunded": t.amount(found.refunded_minor, found.currency) if found.refunded_minor else "",
            "expires": fmt.date_time(t, found.expires_at, tz),
            "expired": found.expires_at <= now,
            "timeline": [{"when": fmt.date_time(t, e.at, tz), "iso": e.at.isoformat(),
                          "what": fmt.event(t, e.action), "who": e.actor} for e in history],
            "files": [{"name": f["filename"], "size": t.size(f["size"])} for f in files],
            "can_remind": acts and found.status in REMINDABLE and found.expires_at > now,
            "can_cancel": acts and found.status in CANCELLABLE,
            "can_refund": signed_in.level.allows(Level.ADMIN) and found.status in REFUNDABLE,
            "zone": tz.key,
        }

