"""The admission SQL: staff check and hourly counts, including the time edge."""

from __future__ import annotations

from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

from gateway import db, hotpath, inbound, vault
from gateway.directory import seed_demo
from tests.test_runner import START


async def test_counts_only_the_last_hour_and_only_staff_pass(tmp_path):
    async with db.opened(f"sqlite://{tmp_path}/t.db"):
        await seed_demo(START)
        key = vault.new_data_key()
        for minutes_ago, sender in ((90, "staff@demo.localhost"), (59, "staff@demo.localhost"),
                                    (30, "other@demo.localhost"), (1, "staff@demo.localhost")):
            await inbound.enqueue(b"x", commit=inbound.GroupCommit(), master_key=key, mail_from=sender, sender=sender, firm_domain="demo.localhost",
                                  rcpt_tos=["pay@demo.localhost"], peer="127.0.0.1", trusted_peer=False,
                                  now=START - timedelta(minutes=minutes_ago))
        since = START - timedelta(hours=1)
        assert await hotpath.admission("demo.localhost", "staff@demo.localhost", since) == (True, 2, 3)
        # The same instant written in another zone counts the same.
        toronto = since.astimezone(ZoneInfo("America/Toronto"))
        assert await hotpath.admission("demo.localhost", "staff@demo.localhost", toronto) == (True, 2, 3)
        assert await hotpath.admission("demo.localhost", "stranger@x.example", since) == (False, 0, 3)
        assert await hotpath.admission("other.example", "staff@demo.localhost", since) == (False, 0, 0)
        assert await hotpath.firm_exists("demo.localhost") and not await hotpath.firm_exists("other.example")
        assert since.tzinfo is timezone.utc
