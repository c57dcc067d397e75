"""A signed message acts only while it is fresh: its signed Date is recent
(CLIENTTRACK_MESSAGE_MAX_AGE_HOURS, 48 by default) and not in the future,
and its signature has not expired (x=, when the signer set one).

Without this, any command or request the firm's staff ever sent stays a
command for ever: whoever holds a copy (a recipient, a mailbox breach, a
backup) could send it again. Together with the Message-IDs the gateway
remembers for longer than this window (intake.py), a signed message acts
at most once, and only soon after it was written.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

# Mail clients write Date from their own clock, which may run a little fast.
FUTURE_SKEW = timedelta(hours=1)


def problem(date: str | None, expires: int | None, now: datetime, max_age: timedelta) -> str:
    """Why the message is not fresh, or ""."""
    if not date:
        return "no Date header"
    try:
        written = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return "the Date header cannot be read"
    if written.tzinfo is None:  # "-0000": a time in UTC from an unknown zone (RFC 5322 3.3)
        written = written.replace(tzinfo=timezone.utc)
    if written < now - max_age:
        return (f"its signed Date is {_hours(now - written)} old; at most {_hours(max_age)} is accepted, "
                "so that old mail cannot be sent again")
    if written > now + FUTURE_SKEW:
        return f"its signed Date is {_hours(written - now)} in the future"
    if expires is not None and expires < now.timestamp():
        return "its DKIM signature has expired (x=)"
    return ""


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours >= 2 else f"{span.total_seconds() / 60:.0f} minutes"
