"""Reminders that chase for the staff, run by housekeeping with the clock
passed in. Once a firm's day reaches REMIND_HOUR (its timezone):

1. each request its schedule says is due gets the client's mail again (the
   same link, "Reminder:" in the subject), if it is still waiting for the
   client: a payment unpaid (sent, viewed or failed; never once paid,
   cancelled or expired), a secure message unread, or one whose checklist
   still waits for a document; never one that bounced (its address does
   not work); never one sent with remind=no, and never
   within a day of its last reminder (the schedule's or the remind
   command's). Days that came together make one reminder.
2. each staff member whose requests were reminded, or whose payment
   requests expire tomorrow unpaid, gets one digest mail that day (one
   ReminderDigest row a member a day, unique), not a mail per reminder.

Each reminder commits its conditional update (reminded_through), its mail
and its event together, so any number of processes running this send it
once; a crash resends nothing and a rerun finishes what was left.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.core import events
from gateway.core.models import (
    Event, Firm, PaymentRequest, ReminderDigest, RequestKind, RequestStatus, Staff,
)
from gateway.core.money import format_display
from gateway.core.settings import zone
from gateway.deps import Deps
from gateway.outbound import clientmail, outbox
from gateway.reminders import schedule
from gateway.replies import checklist

log = logging.getLogger("clienttrack.reminders")

# The actor of the schedule's reminders in the event log (the remind command's is the sender).
AUTO = "reminders"
# Still waiting for the client: unpaid, or (a message) not yet answered.
# Not `bounced`: its address does not work, so nothing is sent to it (its
# staff member was told, and `resend` picks the schedule up again).
WAITING = (RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED)
# Unpaid as far as the expiry warning goes: a bounced request is too.
UNPAID = (*WAITING, RequestStatus.BOUNCED)
# A digest lists the schedule's reminders since the member's last digest,
# looking back at most this far.
LOOKBACK = timedelta(days=7)


@dataclass
class Chased:
    reminded: int = 0
    digests: int = 0


async def last_reminded(request: PaymentRequest) -> datetime | None:
    """When the client was last reminded of it, by the schedule or by hand."""
    last = await Event.filter(request_id=request.id, action="request.reminded").order_by("-at").first()
    return last.at if last else None


async def waits_for_client(request: PaymentRequest) -> bool:
    """A payment unpaid, or a secure message unread or still owed a document."""
    if request.status not in WAITING:
        return False
    if request.kind is RequestKind.PAYMENT or request.status is RequestStatus.SENT:
        return True
    return any(not item.received for item in await checklist.checklist(request))


class Chaser:
    """The schedule of every firm, once a day each from REMIND_HOUR. It
    remembers which firms' day it has done only to spare the queries: what
    is sent is decided by the database."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._done: dict[int, date] = {}

    async def run(self, now: datetime) -> Chased:
        chased = Chased()
        for firm in await Firm.all():
            local = now.astimezone(zone(firm.timezone))
            today = local.date()
            if local.hour < schedule.REMIND_HOUR or self._done.get(firm.id) == today:
                continue
            chased.reminded += await remind(self.deps, firm, now, today)
            chased.digests += await digest(self.deps, firm, now, today)
            self._done[firm.id] = today
        if chased.reminded or chased.digests:
            log.info("%d reminders and %d digests sent", chased.reminded, chased.digests)
        return chased


async def remind(deps: Deps, firm: Firm, now: datetime, today: date) -> int:
    """The firm's reminders due today; how many went."""
    if not (firm.reminder_after or firm.reminder_before_expiry):
        return 0
    firm_zone = zone(firm.timezone)
    sent = 0
    for request in await PaymentRequest.filter(firm_id=firm.id, remind=True, status__in=WAITING, expires_at__gt=now,
                                               sealed_token__isnull=False):
        sent_on = schedule.local_day(request.created_at, firm_zone)
        days = schedule.days(sent_on, schedule.local_day(request.expires_at, firm_zone), firm.reminder_after,
                             firm.reminder_before_expiry)
        if not schedule.due(days, request.reminded_through or sent_on, today):
            continue
        if not await waits_for_client(request):
            continue
        last = await last_reminded(request)
        if last is not None and now - last < schedule.ONCE_A_DAY:
            continue  # tomorrow, then
        sent += await _send(deps, firm, request, now, today)
    if sent:
        deps.outbox_wake.set()
    return sent


async def _send(deps: Deps, firm: Firm, request: PaymentRequest, now: datetime, today: date) -> int:
    async with in_transaction():
        claim = PaymentRequest.filter(id=request.id, remind=True, status__in=WAITING)
        claim = claim.filter(reminded_through__isnull=True) if request.reminded_through is None else \
            claim.filter(reminded_through=request.reminded_through)
        if not await claim.update(reminded_through=today):
            return 0  # paid, cancelled or reminded meanwhile
        staff = await Staff.get_or_none(id=request.staff_id) if request.staff_id else None
        token = clientmail.open_token(deps.master_key, request)
        mail = clientmail.compose(deps, request, firm, staff, token, now, reminder=True)
        await outbox.enqueue(mail, master_key=deps.master_key, kind="client-reminder", now=now, request=request,
                             notify_on_failure=staff.email if staff else request.sender)
        await events.record(now, AUTO, "request.reminded", firm=firm, request=request, day=today.isoformat())
    return 1


@dataclass
class _Digest:
    reminded: list[Event] = field(default_factory=list)
    expiring: list[PaymentRequest] = field(default_factory=list)


async def digest(deps: Deps, firm: Firm, now: datetime, today: date) -> int:
    """Each staff member's digest for today, if they have anything in it."""
    firm_zone = zone(firm.timezone)
    by_staff: dict[str, _Digest] = defaultdict(_Digest)
    for event in await Event.filter(firm_id=firm.id, action="request.reminded", actor=AUTO, at__gte=now - LOOKBACK) \
            .order_by("id").prefetch_related("request"):
        if event.request is not None:
            by_staff[event.request.sender].reminded.append(event)
    tomorrow = datetime.combine(today + timedelta(days=1), time(0), tzinfo=firm_zone)
    for request in await PaymentRequest.filter(firm_id=firm.id, kind=RequestKind.PAYMENT, status__in=UNPAID,
                                               expiry_warned_at__isnull=True, expires_at__gte=tomorrow,
                                               expires_at__lt=tomorrow + timedelta(days=1)).order_by("id"):
        by_staff[request.sender].expiring.append(request)
    sent = 0
    for email, items in by_staff.items():
        last = await ReminderDigest.filter(firm_id=firm.id, staff_email=email).order_by("-day").first()
        if last is not None and last.day >= today:
            continue  # today's went: what came since waits for tomorrow's
        through = last.through_event_id if last else 0
        reminded = [event for event in items.reminded if event.id > through]
        if not reminded and not items.expiring:
            continue
        try:
            async with in_transaction():
                await ReminderDigest.create(firm=firm, staff_email=email, day=today, sent_at=now,
                                            through_event_id=max([through, *(event.id for event in reminded)]))
                if items.expiring:
                    await PaymentRequest.filter(id__in=[r.id for r in items.expiring]).update(expiry_warned_at=now)
                subject, paragraphs = await _digest_text(firm, firm_zone, reminded, items.expiring)
                await outbox.enqueue_notice(deps.composer, master_key=deps.master_key, kind="reminder-digest",
                                            now=now, firm_domain=firm.domain, firm_name=firm.name, to=email,
                                            subject=subject, paragraphs=paragraphs)
        except IntegrityError:
            continue  # another process sent this member's digest today
        sent += 1
    if sent:
        deps.outbox_wake.set()
    return sent


def _what(request: PaymentRequest) -> str:
    return f"invoice {request.invoice}" if request.invoice else (request.title[:40] or "no invoice number")


async def _digest_text(firm: Firm, firm_zone: ZoneInfo, reminded: list[Event],
                       expiring: list[PaymentRequest]) -> tuple[str, list[str]]:
    said = []
    if reminded:
        said.append(f"{len(reminded)} reminder{'s' if len(reminded) != 1 else ''} sent")
    if expiring:
        said.append(f"{len(expiring)} expiring tomorrow unpaid")
    paragraphs = []
    if reminded:
        # Which reminder of its request each one was: one query for them all.
        earlier: dict[int, list[int]] = defaultdict(list)
        for request_id, event_id in await Event.filter(
                request_id__in={event.request_id for event in reminded}, action="request.reminded",
        ).values_list("request_id", "id"):
            earlier[request_id].append(event_id)
        lines = []
        for event in reminded:
            request = event.request
            count = sum(1 for event_id in earlier[request.id] if event_id <= event.id)
            lines.append(f"    R{request.id}  {_what(request)}  {request.client_email}  (reminder {count})")
        described = schedule.describe(firm.reminder_after, firm.reminder_before_expiry)
        paragraphs += [
            f"Following {firm.name}'s reminder schedule ({described}), these clients were sent their request "
            "again, with the same link and password hint:",
            "\n".join(lines),
        ]
    if expiring:
        lines = [f"    R{r.id}  {_what(r)}  {r.client_email}  {format_display(r.amount_minor, r.currency)}, "
                 f"link expires {r.expires_at.astimezone(firm_zone):%Y-%m-%d %H:%M}"
                 + (f"  (bounced: resend R{r.id} to=corrected@address)" if r.status is RequestStatus.BOUNCED else "")
                 for r in expiring]
        paragraphs += ["These payment requests expire tomorrow unpaid:", "\n".join(lines),
                       "To give a client more time, send them a new request."]
    paragraphs.append("A request sent with remind=no is never reminded; \"cancel INVOICE\" withdraws one, and "
                      "\"status INVOICE\" shows its history.")
    return f"Reminders: {', '.join(said)}", paragraphs
