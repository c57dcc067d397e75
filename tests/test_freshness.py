"""A signed message acts only while fresh: its signed Date within the window,
not in the future, its signature not expired."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from gateway.admission.freshness import FUTURE_SKEW, problem

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

NOW = datetime(2026, 5, 4, 15, 0, tzinfo=timezone.utc)
WINDOW = timedelta(hours=48)


def date(delta: timedelta, zone: timezone = timezone(timedelta(hours=-4))) -> str:
    return format_datetime((NOW + delta).astimezone(zone))


@pytest.mark.parametrize("delta", [timedelta(0), -WINDOW + timedelta(minutes=1), FUTURE_SKEW - timedelta(minutes=1),
                                   timedelta(hours=-47)])
def test_a_fresh_date_passes(delta):
    assert problem(date(delta), None, NOW, WINDOW) == ""


def test_a_date_in_minus_0000_is_utc():
    assert problem("Mon, 04 May 2026 14:00:00 -0000", None, NOW, WINDOW) == ""


@pytest.mark.parametrize("value, words", [
    (date(-WINDOW - timedelta(minutes=1)), "48 hours old; at most 48 hours"),
    (date(timedelta(days=-400)), "9600 hours old"),
    (date(FUTURE_SKEW + timedelta(minutes=5)), "65 minutes in the future"),
    (None, "no Date header"),
    ("", "no Date header"),
    ("yesterday", "cannot be read"),
    ("Mon, 99 May 2026 14:00:00 +0000", "cannot be read"),
])
def test_a_stale_missing_or_unreadable_date_is_refused(value, words):
    assert words in problem(value, None, NOW, WINDOW)


def test_the_signature_expiry_is_honoured_on_our_clock():
    assert problem(date(timedelta(0)), int(NOW.timestamp()) + 1, NOW, WINDOW) == ""
    assert "expired (x=)" in problem(date(timedelta(0)), int(NOW.timestamp()) - 1, NOW, WINDOW)


def test_the_window_is_a_setting():
    assert problem(date(timedelta(hours=-3)), None, NOW, timedelta(hours=2)).startswith("its signed Date is 3 hours")
