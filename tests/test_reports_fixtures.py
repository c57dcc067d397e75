"""Shared helpers for the report tests: a temporary database, and firms,
staff, requests and rows made directly. (No tests here.)"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator
from zoneinfo import ZoneInfo

import pytest

from gateway.core import db
from gateway.core.models import Firm, Level, PaymentRequest, RequestStatus, Staff
from gateway.reports.periods import parse_period
from gateway.reports.rows import MONEY_MOVED, Row
from gateway.reports.writers.base import Context
from tests.conftest import database_url

TORONTO = ZoneInfo("America/Toronto")
# A fixed clock: Wednesday 15 April 2026, 10:00 in Toronto.
NOW = datetime(2026, 4, 15, 14, 0, tzinfo=timezone.utc)
_serial = itertools.count(1)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[None]:
    async with db.opened(database_url(tmp_path)):
        yield


async def make_firm(domain: str = "firm.example", *, currency: str = "CAD", timezone_name: str = "America/Toronto",
                    ledger_accounts: dict | None = None, name: str = "Firm & Co") -> Firm:
    return await Firm.create(domain=domain, name=name, currency=currency, timezone=timezone_name,
                             ledger_accounts=ledger_accounts or {}, created_at=NOW)


async def make_staff(firm: Firm, email: str = "admin@firm.example", level: Level = Level.ADMIN) -> Staff:
    return await Staff.create(firm=firm, email=email, level=level, created_at=NOW)


async def make_request(firm: Firm, *, created_at: datetime, status: RequestStatus = RequestStatus.PAID,
                       paid_at: datetime | None = None, amount_minor: int = 125000, currency: str = "CAD",
                       fee_minor: int = 0, provider_fee_minor: int | None = 3650,
                       application_fee_minor: int | None = None, invoice: str = "1042",
                       client: str = "jane@client.example", sender: str = "staff@firm.example",
                       viewed_at: datetime | None = None, deposit_date: date | None = None,
                       provider_ref: str = "pi_123") -> PaymentRequest:
    serial = next(_serial)
    return await PaymentRequest.create(
        firm=firm, sender=sender, invoice=invoice, client_email=client, amount_minor=amount_minor,
        currency=currency, pass_fee=bool(fee_minor), fee_minor=fee_minor, total_minor=amount_minor + fee_minor,
        status=status, token_hash=f"{serial:064x}", kdf={}, wrapped_key=b"", source_message_id=f"<{serial}@test>",
        created_at=created_at, expires_at=created_at + timedelta(days=30), viewed_at=viewed_at, paid_at=paid_at,
        provider="stripe", provider_ref=provider_ref, provider_fee_minor=provider_fee_minor,
        application_fee_minor=application_fee_minor, deposit_date=deposit_date,
    )


def make_row(**overrides) -> Row:
    """A paid CAD request: 1,250.00 + 31.25 fee charged 1,281.25; provider kept 36.50, platform 5.00."""
    values = dict(
        id=next(_serial), invoice="1042", client="jane@client.example", staff="staff@firm.example",
        currency="CAD", amount_minor=125000, fee_minor=3125, total_minor=128125, provider_fee_minor=3650,
        application_fee_minor=500, status="paid", created=datetime(2026, 3, 2, 9, 15, tzinfo=TORONTO),
        viewed=datetime(2026, 3, 2, 11, 0, tzinfo=TORONTO), paid=datetime(2026, 3, 3, 16, 45, 30, tzinfo=TORONTO),
        deposit_date=date(2026, 3, 5), provider="stripe", provider_ref="pi_3Nx",
    )
    values.update(overrides)
    if "total_minor" not in overrides:
        values["total_minor"] = values["amount_minor"] + (values["fee_minor"] or 0)
    if values["paid"] is None or values["status"] not in MONEY_MOVED:
        # As rows.py reads them: no charged amounts where no money moved.
        values.update(fee_minor=None, total_minor=None, provider_fee_minor=None, application_fee_minor=None)
    elif "refunded_minor" not in overrides:
        values["refunded_minor"] = 0
    return Row(**values)


def make_context(period_word: str = "2026-03", *, status: str = "all", currency: str = "CAD",
                 ledger_accounts: dict | None = None) -> Context:
    return Context(firm_name="Firm & Co", firm_domain="firm.example", firm_currency=currency,
                   period=parse_period(period_word, TORONTO, NOW), status=status,
                   ledger_accounts=ledger_accounts or {})
