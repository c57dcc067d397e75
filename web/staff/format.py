"""How the dashboard shows times, statuses and events, in the member's
language and the firm's timezone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.core.models import RequestStatus
from web.i18n import Translator

SHORT_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
}

# Events of a request's timeline that have words of their own; others show their name.
EVENT_KEYS = {
    "request.created": "staff_event_created",
    "request.viewed": "staff_event_viewed",
    "request.locked": "staff_event_locked",
    "request.reminded": "staff_event_reminded",
    "request.paid": "staff_event_paid",
    "request.payment_failed": "staff_event_payment_failed",
    "request.payment_flagged": "staff_event_payment_flagged",
    "request.refund_requested": "staff_event_refund_requested",
    "request.refunded": "staff_event_refunded",
    "request.disputed": "staff_event_disputed",
    "request.cancelled": "staff_event_cancelled",
    "request.expired": "staff_event_expired",
    "request.bounced": "staff_event_bounced",
    "request.resent": "staff_event_resent",
    "delivery.delayed": "staff_event_delivery_delayed",
    "delivery.auto-reply": "staff_event_auto_reply",
    "request.documents_removed": "staff_event_documents_removed",
    "request.replied": "staff_event_replied",
    "request.reply_read": "staff_event_reply_read",
}


def short_date(t: Translator, moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return ""
    day = moment.astimezone(zone)
    month = SHORT_MONTHS[t.lang][day.month - 1]
    return f"{month} {day.day}, {day.year}" if t.lang == "en" else f"{day.day} {month} {day.year}"


def date_time(t: Translator, moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{short_date(t, local, zone)} {local:%H:%M}"


def status(t: Translator, value: RequestStatus | str) -> str:
    return t(f"staff_status_{RequestStatus(value).value}")


def event(t: Translator, action: str) -> str:
    key = EVENT_KEYS.get(action)
    return t(key) if key else action
