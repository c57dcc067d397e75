"""The requests table: filters, and pages read by key, not by offset.

A page is the next PAGE rows in (created_at, id) order from a key taken
from the last row shown, so the database reads about PAGE rows off an
index whichever page it is and however many requests the firm has
(models.PaymentRequest's indexes). An offset would read and skip every
row before the page.

A filter on several statuses (``unpaid``) reads each status's next page
off its own index and merges them: one "status IN (...)" query would have
to sort every matching row to find the newest. The search (client or
invoice, anywhere in them) cannot use an index; it walks the same index
and stops once it has a page, so common words cost a page and only a rare
one reads further.

The rows skip the ORM's conversion: the query and its parameters come from
tortoise, as it would run them, but the records become plain tuples here.
Making 50 model instances (every datetime through the pure-Python iso8601
parser) cost twice reading them (bench/bench_dashboard.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.expressions import Q

from gateway.core.models import PaymentRequest, RequestKind, RequestStatus
from gateway.reports.periods import Period, PeriodError, parse_period

PAGE = 50
# What the table shows of a request: the rest (keys, sealed parts) is not read.
COLUMNS = ("id", "client_email", "invoice", "title", "sender", "amount_minor", "currency", "fee_minor", "pass_fee",
           "status", "created_at", "viewed_at", "paid_at", "kind")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
MAX_SEARCH = 100

# What the status filter offers: one status, or a group of them.
GROUPS: dict[str, tuple[RequestStatus, ...]] = {
    "unpaid": (RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED, RequestStatus.BOUNCED),
    **{status.value: (status,) for status in RequestStatus},
}
PERIODS = ("today", "yesterday", "this-week", "last-week", "this-month", "last-month", "last-30-days",
           "this-quarter", "this-year", "last-year")


@dataclass(frozen=True)
class Key:
    """Where a page starts: a row's (created_at, id)."""

    created_at: datetime
    id: int

    def text(self) -> str:
        # Whole microseconds, not a float: the next page starts exactly here.
        return f"{(self.created_at - _EPOCH) // _MICROSECOND}.{self.id}"

    @classmethod
    def read(cls, text: str) -> Key | None:
        micros, _, row_id = text.partition(".")
        try:
            return cls(_EPOCH + int(micros) * _MICROSECOND, int(row_id))
        except (ValueError, OverflowError):
            return None


@dataclass(frozen=True)
class Filters:
    status: str = ""
    period: str = ""
    staff: str = ""
    q: str = ""
    after: Key | None = None  # older than this row
    before: Key | None = None  # newer than this row

    @property
    def any(self) -> bool:
        return bool(self.status or self.period or self.staff or self.q)

    def query(self, **changes: object) -> str:
        """These filters as a query string (with ``changes``), for links."""
        chosen = replace(self, **changes)
        pairs = [(name, getattr(chosen, name)) for name in ("status", "period", "staff", "q")]
        pairs += [(name, key.text()) for name, key in (("after", chosen.after), ("before", chosen.before)) if key]
        return urlencode([(name, value) for name, value in pairs if value])


def read_filters(params, *, may_pick_staff: bool) -> tuple[Filters, list[str]]:
    """The filters in a query string, and the names of those that were wrong
    (dropped, and said on the page)."""
    wrong = []
    status = params.get("status", "")
    if status and status not in GROUPS:
        wrong.append("status")
        status = ""
    period = params.get("period", "").strip().lower()
    staff = params.get("staff", "").strip().lower() if may_pick_staff else ""
    q = " ".join(params.get("q", "").split())[:MAX_SEARCH]
    after = Key.read(params["after"]) if params.get("after") else None
    before = Key.read(params["before"]) if params.get("before") else None
    return Filters(status, period, staff, q, after, before), wrong


def period_of(word: str, zone: ZoneInfo, now: datetime) -> Period | None:
    """The period a word names in the firm's zone; raises PeriodError."""
    return parse_period(word, zone, now) if word else None


class Listed(NamedTuple):
    """A request as the table reads it (COLUMNS, in order)."""

    id: int
    client_email: str
    invoice: str
    title: str
    sender: str
    amount_minor: int
    currency: str
    fee_minor: int | None
    pass_fee: bool
    status: RequestStatus
    created_at: datetime
    viewed_at: datetime | None
    paid_at: datetime | None
    # payment, or message (secure@: no amount)
    kind: RequestKind


def _moment(value: str | datetime | None) -> datetime | None:
    """SQLite gives text, PostgreSQL a datetime; naive ones were stored as UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _listed(record) -> Listed:
    return Listed(record[0], record[1], record[2], record[3], record[4], record[5], record[6], record[7],
                  bool(record[8]), RequestStatus(record[9]), _moment(record[10]), _moment(record[11]),
                  _moment(record[12]), RequestKind(record[13]))


async def records(query) -> list:
    """What a tortoise values_list query reads, as the database gives it."""
    query.sql()  # builds query.query, which gives the statement and its parameters as tortoise runs them
    statement, parameters = query.query.get_parameterized_sql()
    _, found = await connections.get("default").execute_query(statement, parameters)
    return found


async def _fetch(query, size: int) -> list[Listed]:
    return [_listed(record) for record in await records(query.limit(size).values_list(*COLUMNS))]


@dataclass(frozen=True)
class Page:
    rows: list[Listed]
    older: Key | None  # the key of the next page, if there is one
    newer: Key | None  # the key of the page before, if this is not the first


def _utc(moment: datetime) -> datetime:
    # SQLite compares these columns as text: bounds must be in UTC like the stored times.
    return moment.astimezone(timezone.utc)


def _matching(firm_id: int, sender: str, status: RequestStatus | None, period: Period | None, q: str):
    query = PaymentRequest.filter(firm_id=firm_id)
    if sender:
        query = query.filter(sender=sender)
    if status is not None:
        query = query.filter(status=status)
    if period is not None:
        query = query.filter(created_at__gte=_utc(period.start), created_at__lt=_utc(period.end))
    if q:
        query = query.filter(Q(client_email__icontains=q) | Q(invoice__icontains=q))
    return query


def _from(query, key: Key | None, older: bool):
    """Rows past ``key`` in the page's direction: a range on created_at the
    index walks, with the id deciding ties."""
    if key is None:
        return query.order_by("-created_at", "-id") if older else query.order_by("created_at", "id")
    moment = _utc(key.created_at)
    if older:
        return query.filter(Q(created_at__lt=moment) | Q(id__lt=key.id), created_at__lte=moment) \
            .order_by("-created_at", "-id")
    return query.filter(Q(created_at__gt=moment) | Q(id__gt=key.id), created_at__gte=moment) \
        .order_by("created_at", "id")


def _sort_key(row: Listed) -> tuple[datetime, int]:
    return row.created_at, row.id


async def page(firm_id: int, filters: Filters, *, sender: str, period: Period | None,
               size: int = PAGE) -> Page:
    """One page of the firm's requests, newest first; ``sender`` (an address)
    keeps to one staff member's own."""
    older = filters.before is None
    key = filters.after if older else filters.before
    statuses = GROUPS.get(filters.status) or (None,)
    found: list[Listed] = []
    for status in statuses:
        found.extend(await _fetch(_from(_matching(firm_id, sender, status, period, filters.q), key, older), size + 1))
    found.sort(key=_sort_key, reverse=older)
    more = len(found) > size
    rows = found[:size]
    if not older:
        rows.reverse()
    if not rows:
        return Page([], None, None)
    first, last = Key(*_sort_key(rows[0])), Key(*_sort_key(rows[-1]))
    if older:
        return Page(rows, last if more else None, first if key is not None else None)
    return Page(rows, last, first if more else None)


__all__ = ["GROUPS", "PAGE", "PERIODS", "Filters", "Key", "Page", "PeriodError", "page", "period_of", "read_filters"]
