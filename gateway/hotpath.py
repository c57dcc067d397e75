"""The admission checks as hand-written SQL. They run on every RCPT and
DATA, and building them through the ORM cost more than running them
(measured with bench/bench_admission.py: about 2 ms of the ORM's query
building a message). Written with `?` placeholders; PostgreSQL gets `$n`."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from tortoise import connections

FIRM_EXISTS = "SELECT 1 FROM firm WHERE domain = ? LIMIT 1"

# Is the sender on the firm's staff; how many messages has the firm taken
# since ?, and how many of them from this sender (the hourly limits).
ADMISSION = """
SELECT
  (SELECT COUNT(*) FROM staff JOIN firm ON staff.firm_id = firm.id WHERE firm.domain = ? AND staff.email = ?),
  (SELECT COUNT(*) FROM inbound_message WHERE firm_domain = ? AND received_at >= ? AND sender = ?),
  (SELECT COUNT(*) FROM inbound_message WHERE firm_domain = ? AND received_at >= ?)
"""

_PLACEHOLDER = re.compile(r"\?")


async def _row(sql: str, params: list) -> tuple:
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        counter = iter(range(1, len(params) + 1))
        sql = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
    _, rows = await connection.execute_query(sql, params)
    return tuple(rows[0]) if rows else ()


async def firm_exists(domain: str) -> bool:
    return bool(await _row(FIRM_EXISTS, [domain]))


async def admission(domain: str, sender: str, since: datetime) -> tuple[bool, int, int]:
    """(is staff, messages from sender since, messages for the firm since)."""
    # Stored in UTC (the ORM's use_tz), compared as stored.
    since = since.astimezone(timezone.utc)
    staff, mine, total = await _row(ADMISSION, [domain, sender, domain, since, sender, domain, since])
    return bool(staff), mine, total
