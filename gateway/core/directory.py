"""Firms and their staff: adding, changing, listing. Used by the command
line, the demo seed and the admin mail commands alike."""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parseaddr

from gateway.core import events
from gateway.core.language import LANGUAGES
from gateway.core.models import Firm, Level, Staff, StaffSession
from gateway.core.money import CURRENCY_DECIMALS
from gateway.core.settings import zone

DEMO_DOMAIN = "demo.localhost"
DEMO_FIRM_NAME = "Demo Accounting"
DEMO_STAFF = "staff@demo.localhost"
# The demo firm is in Ontario and told the card networks long ago that it
# passes card fees on, so the demo's `+fee` shows the fee at once.
DEMO_PROVINCE = "ON"
DEMO_NOTICE_DATE = date(2024, 1, 2)

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")


class DirectoryError(ValueError):
    """A firm or staff change that cannot be made; the message says why."""


def clean_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    if not _DOMAIN.match(domain):
        raise DirectoryError(f"not a domain name: {domain!r} (for example firm.example.ca)")
    return domain


def clean_email(address: str) -> str:
    name, addr = parseaddr(address.strip())
    local, at, domain = addr.rpartition("@")
    if not at or not local or name or addr != address.strip():
        raise DirectoryError(f"not an email address: {address!r}")
    return f"{local}@{clean_domain(domain)}".lower()


def parse_level(text: str) -> Level:
    try:
        return Level(text.strip().lower())
    except ValueError:
        raise DirectoryError(f"unknown level {text!r}: choose none, send, report or admin") from None


async def set_language(firm: Firm, language: str, *, now: datetime, actor: str) -> Firm:
    """The language of the firm's clients' mail and pages when a request
    says none: "en", "fr", or "none" (mail in English, pages as the
    browser asks)."""
    text = language.strip().lower()
    if text not in (*LANGUAGES, "none"):
        raise DirectoryError(f"unknown language {language!r}: choose {', '.join(LANGUAGES)} or none")
    firm.language = "" if text == "none" else text
    await firm.save(update_fields=["language"])
    await events.record(now, actor, "firm.language", firm=firm, language=firm.language or "none")
    return firm


async def get_firm(domain: str) -> Firm:
    firm = await Firm.get_or_none(domain=clean_domain(domain))
    if firm is None:
        raise DirectoryError(f"no firm with domain {domain!r} (add it with: clienttrack firm add {domain} --name NAME)")
    return firm


async def add_firm(domain: str, name: str, *, currency: str, timezone: str, now: datetime, actor: str) -> Firm:
    domain = clean_domain(domain)
    currency = currency.strip().upper()
    if currency not in CURRENCY_DECIMALS:
        raise DirectoryError(f"unknown currency {currency!r}")
    zone(timezone)
    if not name.strip():
        raise DirectoryError("a firm needs a name (--name)")
    if await Firm.exists(domain=domain):
        raise DirectoryError(f"firm {domain} exists already")
    firm = await Firm.create(domain=domain, name=name.strip(), currency=currency, timezone=timezone, created_at=now)
    await events.record(now, actor, "firm.added", firm=firm, domain=domain)
    return firm


async def add_staff(firm: Firm, email: str, level: Level, *, now: datetime, actor: str, name: str = "") -> Staff:
    email = clean_email(email)
    if await Staff.exists(firm=firm, email=email):
        raise DirectoryError(f"{email} is already staff of {firm.domain} (change the level with: staff set)")
    staff = await Staff.create(firm=firm, email=email, level=level, name=name, created_at=now)
    await events.record(now, actor, "staff.added", firm=firm, email=email, level=level.value)
    return staff


async def get_staff(firm: Firm, email: str) -> Staff:
    staff = await Staff.get_or_none(firm=firm, email=clean_email(email))
    if staff is None:
        raise DirectoryError(f"{email} is not staff of {firm.domain}")
    return staff


async def set_level(firm: Firm, email: str, level: Level, *, now: datetime, actor: str) -> Staff:
    staff = await get_staff(firm, email)
    before = staff.level
    staff.level = level
    await staff.save(update_fields=["level"])
    if level is Level.NONE:
        await end_sessions(staff)
    await events.record(now, actor, "staff.level", firm=firm, email=staff.email, before=before.value, after=level.value)
    return staff


async def remove_staff(firm: Firm, email: str, *, now: datetime, actor: str) -> None:
    staff = await get_staff(firm, email)
    await end_sessions(staff)
    await staff.delete()
    await events.record(now, actor, "staff.removed", firm=firm, email=staff.email)


async def end_sessions(staff: Staff) -> int:
    """Signs the member out of the dashboard in every browser at once. (The
    pages also check the level on every request; this makes it immediate
    and leaves no session to come back to if the level is raised again.)"""
    return await StaffSession.filter(staff_id=staff.id).delete()


async def seed_demo(now: datetime) -> Firm:
    """The demo firm and its admin, made once."""
    firm = await Firm.get_or_none(domain=DEMO_DOMAIN)
    if firm is None:
        firm = await add_firm(DEMO_DOMAIN, DEMO_FIRM_NAME, currency="CAD", timezone="America/Toronto",
                              now=now, actor="demo")
        firm.province, firm.surcharge_notice_date = DEMO_PROVINCE, DEMO_NOTICE_DATE
        await firm.save(update_fields=["province", "surcharge_notice_date"])
    if not await Staff.exists(firm=firm, email=DEMO_STAFF):
        await add_staff(firm, DEMO_STAFF, Level.ADMIN, now=now, actor="demo", name="Demo Staff")
    return firm
