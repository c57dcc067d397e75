"""Helpers for the dashboard's tests: colleagues in the demo firm, and a
browser-like client signed in through a real one-time link."""

from __future__ import annotations

import re
import secrets
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import AsyncIterator

import httpx

from gateway.core import directory
from gateway.core.models import Firm, Level, PaymentRequest, RequestStatus, Staff
from gateway.service import Running
from gateway.vault import signin
from tests.web_support import base_url, csrf_token

DEMO_DOMAIN = "demo.localhost"
ADMIN = "staff@demo.localhost"
LINK = re.compile(r"https?://[^\s\"<>]+/staff/sign-in/[A-Za-z0-9_-]{43}")


async def colleague(gw: Running, email: str, level: Level) -> Staff:
    firm = await Firm.get(domain=DEMO_DOMAIN)
    return await directory.add_staff(firm, email, level, now=gw.deps.clock(), actor="test")


async def link_for(gw: Running, email: str = ADMIN) -> str:
    staff = await Staff.get(email=email).select_related("firm")
    return await signin.new_link(staff, base_url=base_url(gw), now=gw.deps.clock(), actor="test")


async def sign_in(http: httpx.AsyncClient, link: str) -> httpx.Response:
    """Open the link's page and press its Sign in button."""
    page = await http.get(link)
    assert page.status_code == 200, page.text
    return await http.post(link, data={"csrf_token": csrf_token(page)})


@asynccontextmanager
async def signed_in(gw: Running, email: str = ADMIN) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(gw)) as http:
        done = await sign_in(http, await link_for(gw, email))
        assert done.status_code == 303 and done.headers["location"] == "/staff/", done.text
        yield http


async def post_form(http: httpx.AsyncClient, page_path: str, action: str, data: dict | None = None,
                    **headers: str) -> httpx.Response:
    """Post one of a page's forms with the page's CSRF token, as a browser would."""
    page = await http.get(page_path)
    return await http.post(action, data={"csrf_token": csrf_token(page), **(data or {})}, headers=headers)


async def add_requests(gw: Running, count: int, *, sender: str = ADMIN, status: RequestStatus = RequestStatus.SENT,
                       start: datetime | None = None, every: timedelta = timedelta(minutes=1),
                       client: str = "client{n}@example.com", invoice: str = "INV-{n}",
                       amount_minor: int = 125_000) -> list[int]:
    """``count`` requests straight into the table (nothing sealed: for the
    table's tests and benchmark), one ``every`` apart from ``start``; their ids."""
    firm = await Firm.get(domain=DEMO_DOMAIN)
    staff = await Staff.get_or_none(firm=firm, email=sender)
    start = start or gw.deps.clock() - every * count
    first = (await PaymentRequest.all().order_by("-id").first())
    offset = first.id if first else 0
    rows = [
        PaymentRequest(
            firm=firm, staff=staff, sender=sender, invoice=invoice.format(n=offset + n + 1),
            client_email=client.format(n=offset + n + 1), amount_minor=amount_minor, currency="CAD", status=status,
            token_hash=secrets.token_hex(32), kdf={}, wrapped_key=b"", source_message_id=f"<{secrets.token_hex(8)}@test>",
            created_at=start + every * n, expires_at=start + every * n + timedelta(days=30),
        )
        for n in range(count)
    ]
    await PaymentRequest.bulk_create(rows, batch_size=500)
    return list(await PaymentRequest.filter(id__gt=offset).order_by("id").values_list("id", flat=True))
