"""The `report FORMAT PERIOD [STATUS]` mail command: the reply's text and file.

An empty period gets a reply that says so and no file: there is nothing
to import. A wrong word gets a reply naming it, with the choices.
"""

from __future__ import annotations

import io
from datetime import datetime

from gateway.core.models import Firm, Level, Staff
from gateway.reports.export import period_of, run_report
from gateway.reports.grammar import GrammarError, parse_report_args
from gateway.reports.periods import PeriodError

Attachment = tuple[str, str, bytes]  # (filename, content type, content)


async def build_report_reply(
    firm: Firm, staff: Staff | None, args: tuple[str, ...], now: datetime
) -> tuple[str, list[Attachment]] | str:
    """(summary text, attachments) for the reply, or the text of an error reply."""
    level = staff.level if staff is not None else Level.NONE
    if not level.allows(Level.REPORT):
        return (f"Reports are for staff at level report or admin; you are at level {level.value}. "
                f"Ask an administrator of {firm.name} to grant you report.")
    try:
        spec = parse_report_args(args)
        period = period_of(firm, spec, now)
    except (GrammarError, PeriodError) as exc:
        return str(exc)
    out = io.BytesIO()
    report = await run_report(firm, spec, period, out)
    if report.summary.count == 0:
        return report.text, []
    return report.text, [(report.filename, report.written.media_type, out.getvalue())]
