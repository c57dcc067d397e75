"""The report's rows: one per payment request, read from the database in
batches so that 100,000 requests never sit in memory at once.

Which requests a period holds: a request belongs to the day it was paid,
if it was paid (even if refunded since), and otherwise to the day it was
created. So a request sent in February and paid in March is in March's
report, once, where the money arrived. The accounting formats take only
paid requests, by the day they were paid.

Amounts stay integers of minor units; ``money()`` turns them into exact
Decimals ("1250.00") for the writers. The figures per request, all in the
request's currency:

- amount: what the firm asked for (the invoice); blank for a secure
  message (secure@), which asks for no money and has none of the figures
  below;
- and only for money that moved (paid, partially refunded, refunded,
  disputed; blank for a request that was never charged, a declined one
  included):
  - fee: the card fee passed on to the client, 0 when the firm absorbs it;
  - total: what the client was charged, amount + fee;
  - provider fee: what the payment provider kept, None while unknown;
  - platform fee: what the platform kept, 0 when none;
  - net = total - provider fee - platform fee: what reaches the firm, so
    every row reconciles; blank while the provider fee is unknown;
  - refunded: what was given back since (it does not change net).
  A payment the provider settled in another currency (a USD payment to a
  CAD account) has its provider fee converted back at the provider's rate,
  and three more columns: the deposit currency, that exchange rate and the
  net deposited in that currency (the provider's balance transaction).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, AsyncGenerator, NamedTuple, Sequence
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.expressions import Q

from gateway.core.models import PaymentRequest, RequestKind, RequestStatus
from gateway.core.money import CURRENCY_DECIMALS
from gateway.reports.grammar import ALL
from gateway.reports.periods import Period

# SQLite before 3.32 took at most 999 parameters a query; an IN list of ids is one each.
BATCH_SIZE = 900

# Read in this order; _row() takes them by position.
_COLUMNS = (
    "id", "invoice", "client_email", "sender", "currency", "amount_minor", "fee_minor", "total_minor",
    "provider_fee_minor", "application_fee_minor", "status", "created_at", "viewed_at", "paid_at",
    "deposit_date", "provider", "provider_ref", "refunded_minor", "customer",
    "settlement_currency", "exchange_rate", "settlement_net_minor", "documents_removed_at", "kind",
)
# Statuses of requests whose money moved: the only ones with charged amounts.
MONEY_MOVED = frozenset({RequestStatus.PAID.value, RequestStatus.PARTIALLY_REFUNDED.value,
                         RequestStatus.REFUNDED.value, RequestStatus.DISPUTED.value})


class Row(NamedTuple):
    """One request. A named tuple: 100,000 of them are made per 100,000 rows,
    and a tuple is made several times faster than a frozen dataclass."""

    id: int
    invoice: str
    client: str
    staff: str
    currency: str
    # None for a secure message (no money asked).
    amount_minor: int | None
    # None when no money moved.
    fee_minor: int | None
    total_minor: int | None
    provider_fee_minor: int | None
    application_fee_minor: int | None
    status: str
    # Times are in the firm's timezone.
    created: datetime
    viewed: datetime | None
    paid: datetime | None
    deposit_date: date | None
    provider: str
    provider_ref: str
    refunded_minor: int | None = None
    # The customer= directive: the client's name in QuickBooks ("" = not given).
    customer: str = ""
    # Where the money landed, in the provider's settlement currency (None: not known).
    settlement_currency: str | None = None
    exchange_rate: str | None = None
    settlement_net_minor: int | None = None
    # When retention deleted the request's documents (its record stays).
    documents_removed: datetime | None = None

    @property
    def received(self) -> bool:
        return self.paid is not None and self.status in MONEY_MOVED

    @property
    def fees_minor(self) -> int:
        """What the provider and the platform kept (unknown provider fee: 0)."""
        return (self.provider_fee_minor or 0) + (self.application_fee_minor or 0)

    @property
    def net_minor(self) -> int | None:
        """Total less both fees; None without money moved or while the provider fee is unknown."""
        if not self.received or self.provider_fee_minor is None or self.total_minor is None:
            return None
        return self.total_minor - self.provider_fee_minor - (self.application_fee_minor or 0)


def money(minor: int, currency: str) -> Decimal:
    """Minor units as an exact Decimal with the currency's decimals: 125000 CAD -> 1250.00."""
    return Decimal(minor).scaleb(-CURRENCY_DECIMALS[currency])


@dataclass(frozen=True)
class Selection:
    """Which requests a report holds."""

    firm_id: int
    period: Period
    status: str = ALL
    payments_only: bool = False

    def queryset(self):
        # SQLite compares these columns as text: bounds must be in UTC like the stored times.
        start = self.period.start.astimezone(timezone.utc)
        end = self.period.end.astimezone(timezone.utc)
        paid_in_period = Q(paid_at__gte=start, paid_at__lt=end)
        if self.payments_only:
            when = paid_in_period
        else:
            when = paid_in_period | Q(paid_at__isnull=True, created_at__gte=start, created_at__lt=end)
        query = PaymentRequest.filter(when, firm_id=self.firm_id)
        if self.status != ALL:
            query = query.filter(status=RequestStatus(self.status))
        return query

    async def count(self) -> int:
        return await self.queryset().count()

    async def batches(self, size: int = BATCH_SIZE) -> AsyncGenerator[list[Row], None]:
        """Rows in id order, ``size`` at a time.

        The matching ids come first, in one query, kept as 8 bytes each;
        the rows follow a batch at a time, looked up by primary key. Paging
        with "firm = ? AND id > last ORDER BY id LIMIT n" (keyset) would
        need an index on (firm, id): without one, SQLite answers every page
        from the (firm, sender, message id) index, reading and sorting all
        the firm's remaining requests again (100,000 requests took 6.5 s of
        CPU to read that way). A request that changes while the report runs
        shows its newest state.

        The batches bypass the ORM's row conversion: tortoise parses each
        datetime with the pure-Python iso8601 package, which cost more than
        all the rest of the reading. The SQL still comes from tortoise, in
        the database's own placeholder style.
        """
        ids = array("q", await self.queryset().order_by("id").values_list("id", flat=True))
        connection = connections.get("default")  # gateway.core.db opens one database, tortoise's "default"
        statements: dict[int, str] = {}
        zone = self.period.zone
        for start in range(0, len(ids), size):
            chunk = ids[start:start + size].tolist()
            if len(chunk) not in statements:
                statements[len(chunk)] = _by_ids(len(chunk))
            _, records = await connection.execute_query(statements[len(chunk)], chunk)
            yield [_row(record, zone) for record in records]


def _by_ids(count: int) -> str:
    """SELECT the report's columns of ``count`` requests by id, with placeholders."""
    return PaymentRequest.filter(id__in=list(range(count))).order_by("id").values_list(*_COLUMNS).sql()


def _row(r: Sequence[Any], zone: ZoneInfo) -> Row:
    """A record of _COLUMNS as a Row: charged amounts only where money moved."""
    amount, fee, total = (None if r[23] == RequestKind.MESSAGE.value else r[5]), r[6] or 0, r[7]
    paid = _datetime(r[13], zone)
    if paid is not None and r[10] in MONEY_MOVED:
        charged = (fee, amount + fee if total is None else total, r[8], r[9] or 0)
        refunded = r[17] or 0
    else:
        charged, refunded = (None, None, None, None), None
    return Row(
        r[0], r[1], r[2], r[3], r[4], amount,  # id, invoice, client, staff, currency, amount
        *charged, r[10],  # fee, total, provider fee, platform fee, status
        _datetime(r[11], zone), _datetime(r[12], zone), paid,  # created, viewed, paid
        _date(r[14]), r[15], r[16], refunded,  # deposit date, provider, provider reference, refunded
        r[18] or "",  # customer
        # deposit currency, exchange rate, net deposited: only where money moved and the provider said
        *((r[19], r[20] or None, r[21]) if refunded is not None and r[19] and r[21] is not None else (None,) * 3),
        _datetime(r[22], zone),  # documents removed
    )


def _datetime(value: str | datetime | None, zone: ZoneInfo) -> datetime | None:
    """SQLite gives text, PostgreSQL a datetime; naive ones were stored as UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone)


def _date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
