"""The admission checks as hand-written SQL. They run on every RCPT and
DATA, and building them through the ORM cost more than running them
(measured with bench/bench_admission.py: about 2 ms of the ORM's query
building a message). Written with `?` placeholders; PostgreSQL gets `$n`.
gateway/admission/intake.py runs ADMISSION on SQLite's own connection too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from gateway.core import rows

FIRM_EXISTS = "SELECT 1 FROM firm WHERE domain = ? LIMIT 1"

# Is the sender on the firm's staff; how many messages has the firm taken
# in the window, and how many of them from this sender (the hourly limits).
ADMISSION = """
SELECT
  (SELECT COUNT(*) FROM staff JOIN firm ON staff.firm_id = firm.id WHERE firm.domain = ? AND staff.email = ?),
  (SELECT COALESCE(SUM(messages), 0) FROM admission_count WHERE firm_domain = ? AND sender = ? AND minute > ?),
  (SELECT COALESCE(SUM(messages), 0) FROM admission_count WHERE firm_domain = ? AND sender = '' AND minute > ?)
"""

# Admitted messages added to a minute's count (one row for the sender, one
# with sender "" for the firm).
ADD_COUNT = """
INSERT INTO admission_count (firm_domain, sender, minute, messages) VALUES (?, ?, ?, ?)
ON CONFLICT (firm_domain, sender, minute) DO UPDATE SET messages = admission_count.messages + excluded.messages
"""

# Was this Message-ID (its digest) accepted for the firm before; remember one.
MESSAGE_ACCEPTED = "SELECT 1 FROM accepted_message_id WHERE firm_domain = ? AND digest = ? LIMIT 1"
ADD_MESSAGE_ID = "INSERT INTO accepted_message_id (firm_domain, digest, accepted_at) VALUES (?, ?, ?)"

# The hourly limits look at this many minutes: the current one and the 59
# before it (so a message counts for 59 to 60 minutes).
WINDOW_MINUTES = 60


async def _row(sql: str, params: list, connection: BaseDBAsyncClient | None = None) -> tuple:
    connection = connection or connections.get("default")
    _, found = await connection.execute_query(rows.for_dialect(sql, connection.capabilities.dialect), params)
    return tuple(found[0]) if found else ()


async def firm_exists(domain: str) -> bool:
    return bool(await _row(FIRM_EXISTS, [domain]))


def minute_of(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def admission_parameters(domain: str, sender: str, now: datetime) -> list:
    oldest_excluded = minute_of(now) - WINDOW_MINUTES
    return [domain, sender, domain, sender, oldest_excluded, domain, oldest_excluded]


def count_rows(admitted: Iterable[tuple[str, str, datetime]]) -> list[tuple[str, str, int, int]]:
    """ADD_COUNT's rows for admitted (firm domain, sender, time) triples."""
    counts: Counter[tuple[str, str, int]] = Counter()
    for domain, sender, moment in admitted:
        minute = minute_of(moment)
        counts[(domain, sender, minute)] += 1
        counts[(domain, "", minute)] += 1
    return [(domain, sender, minute, n) for (domain, sender, minute), n in counts.items()]


async def admission(domain: str, sender: str, now: datetime,
                    connection: BaseDBAsyncClient | None = None) -> tuple[bool, int, int]:
    """(is staff, messages from sender in the window, messages for the firm in the window)."""
    staff, mine, total = await _row(ADMISSION, admission_parameters(domain, sender, now), connection)
    return bool(staff), mine, total


async def add_counts(admitted: Iterable[tuple[str, str, datetime]],
                     connection: BaseDBAsyncClient | None = None) -> None:
    for row in count_rows(admitted):
        await _row(ADD_COUNT, list(row), connection)


async def message_accepted(domain: str, digest: str, connection: BaseDBAsyncClient | None = None) -> bool:
    return bool(await _row(MESSAGE_ACCEPTED, [domain, digest], connection))
