"""The admission SQL: staff check and the per-minute counts of the hourly
limits, including the window's edge."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from gateway.admission import sql
from gateway.core import db
from gateway.core.directory import seed_demo
from gateway.core.models import AdmissionCount
from gateway.housekeeping import forget_admission_counts
from tests.conftest import database_url
from tests.test_runner import START

STAFF = "staff@demo.localhost"


async def test_counts_cover_the_last_60_minutes_and_only_staff_pass(tmp_path):
    async with db.opened(database_url(tmp_path)):
        await seed_demo(START)
        for minutes_ago, sender in ((90, STAFF), (60, STAFF), (59, STAFF), (30, "other@demo.localhost"),
                                    (1, STAFF), (0, STAFF)):
            await sql.add_counts([("demo.localhost", sender, START - timedelta(minutes=minutes_ago))])
        assert await sql.admission("demo.localhost", STAFF, START) == (True, 3, 4)
        # The same instant written in another zone counts the same.
        toronto = START.astimezone(ZoneInfo("America/Toronto"))
        assert await sql.admission("demo.localhost", STAFF, toronto) == (True, 3, 4)
        # Seconds into the minute change nothing; the next minute drops the one 59 minutes ago.
        assert await sql.admission("demo.localhost", STAFF, START + timedelta(seconds=59)) == (True, 3, 4)
        assert await sql.admission("demo.localhost", STAFF, START + timedelta(minutes=1)) == (True, 2, 3)
        assert await sql.admission("demo.localhost", "stranger@x.example", START) == (False, 0, 4)
        assert await sql.admission("other.example", STAFF, START) == (False, 0, 0)
        assert await sql.firm_exists("demo.localhost") and not await sql.firm_exists("other.example")


async def test_housekeeping_forgets_the_minutes_no_limit_looks_at(tmp_path):
    async with db.opened(database_url(tmp_path)):
        await seed_demo(START)
        for minutes_ago in (61, 60, 59):
            await sql.add_counts([("demo.localhost", STAFF, START - timedelta(minutes=minutes_ago))])
        assert await forget_admission_counts(START) == 4  # two minutes, each a sender row and a firm row
        assert await sql.admission("demo.localhost", STAFF, START) == (True, 1, 1)
        assert await AdmissionCount.all().count() == 2
