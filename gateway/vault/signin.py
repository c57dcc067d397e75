"""One-time sign-in links to the firm's dashboard.

The `dashboard` mail command (alias `login`) and `clienttrack staff link`
make one: a 256-bit token in the URL, stored only as its SHA-256, bound to
one staff member of one firm, valid TTL and spent once. Opening the link
only shows a page with a "Sign in" button; the button's POST spends it
(web/staff/signin.py), so a mail scanner that fetches every link it sees
(Outlook's Safe Links and the like) neither signs in nor uses it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway import vault
from gateway.core import events
from gateway.core.models import Firm, Level, Staff, StaffSession, StaffSignIn

TTL = timedelta(minutes=15)
# The session a link starts (web/staff/sessions.py): the client side's idle
# timeout, and a working day at most whatever the activity.
SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)
PATH = "/staff/sign-in/"


def url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{PATH}{token}"


async def new_link(staff: Staff, *, base_url: str, now: datetime, actor: str) -> str:
    """A fresh link for ``staff`` (whose level must allow anything at all)."""
    if staff.level is Level.NONE:
        raise ValueError(f"{staff.email} has level none and may not sign in")
    token = vault.new_token()
    await StaffSignIn.create(token_hash=vault.token_hash(token), staff_id=staff.id, firm_id=staff.firm_id,
                             created_at=now, expires_at=now + TTL)
    await events.record(now, actor, "staff.sign_in_link", firm=await Firm.get(id=staff.firm_id), email=staff.email)
    return url(base_url, token)


@dataclass(frozen=True)
class Found:
    """What a link says, to show on its page: whom it signs in, to which firm,
    and whether it can still be used."""

    sign_in: StaffSignIn | None
    staff: Staff | None
    firm: Firm | None
    usable: bool


async def look(token: str, now: datetime) -> Found:
    """Read a link without spending it (the GET of its page)."""
    sign_in = await StaffSignIn.get_or_none(token_hash=vault.token_hash(token))
    if sign_in is None:
        return Found(None, None, None, False)
    staff = await Staff.get_or_none(id=sign_in.staff_id, firm_id=sign_in.firm_id)
    firm = await Firm.get_or_none(id=sign_in.firm_id)
    usable = (sign_in.used_at is None and sign_in.expires_at > now and staff is not None
              and staff.level is not Level.NONE)
    return Found(sign_in, staff, firm, usable)


async def spend(token: str, now: datetime) -> Staff | None:
    """Use the link up; the staff member it signs in, or None if it was
    unknown, used, expired, or its member has since lost access. The
    conditional update is the spending: two POSTs at once, one wins."""
    token_hash = vault.token_hash(token)
    won = await StaffSignIn.filter(token_hash=token_hash, used_at__isnull=True, expires_at__gt=now) \
        .update(used_at=now)
    if not won:
        return None
    sign_in = await StaffSignIn.get(token_hash=token_hash)
    staff = await Staff.get_or_none(id=sign_in.staff_id, firm_id=sign_in.firm_id).select_related("firm")
    if staff is None or staff.level is Level.NONE:
        return None
    return staff


async def forget_old(now: datetime) -> int:
    """Housekeeping: links a while past their time (kept that long so their
    page can still say "used or expired"), and sessions idle too long."""
    links = await StaffSignIn.filter(expires_at__lte=now - timedelta(days=1)).delete()
    sessions = await StaffSession.filter(last_seen_at__lt=now - SESSION_IDLE).delete()
    return links + sessions
