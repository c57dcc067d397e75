"""Running a report: from the spec and the firm to a written file and its summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Callable

from gateway.core.models import Firm
from gateway.core.settings import zone
from gateway.reports import customers
from gateway.reports.grammar import ALL, ReportSpec
from gateway.reports.periods import Period, parse_period
from gateway.reports.rows import Row, Selection
from gateway.reports.stream import consume_in_thread
from gateway.reports.summary import Summary
from gateway.reports.writers import WRITERS
from gateway.reports.writers.base import Context, Written


@dataclass(frozen=True)
class Report:
    firm: Firm
    spec: ReportSpec
    period: Period
    summary: Summary
    written: Written

    @property
    def filename(self) -> str:
        """Like "firm.example-xlsx-2026-03-01_2026-03-31-paid.xlsx"."""
        status = "" if self.spec.status == ALL else f"-{self.spec.status}"
        return f"{self.firm.domain}-{self.spec.format}-{self.period.slug}{status}.{self.written.extension}"

    @property
    def text(self) -> str:
        return self.summary.text(self.firm.name, self.written.notes)


def period_of(firm: Firm, spec: ReportSpec, now: datetime) -> Period:
    """The spec's PERIOD in the firm's timezone; raises PeriodError naming the word."""
    return parse_period(spec.period_word, zone(firm.timezone), now)


def selection_of(firm: Firm, spec: ReportSpec, period: Period) -> Selection:
    return Selection(firm.id, period, spec.status, spec.payments_only)


async def run_report(
    firm: Firm,
    spec: ReportSpec,
    period: Period,
    out: BinaryIO,
    on_rows: Callable[[int], None] = lambda count: None,
) -> Report:
    """Write the report to ``out`` (left open), streaming rows from the database;
    ``on_rows(n)`` each time n more rows are written (for a progress bar)."""
    context = Context(
        firm_name=firm.name,
        firm_domain=firm.domain,
        firm_currency=firm.currency,
        period=period,
        status=spec.status,
        ledger_accounts=firm.ledger_accounts or {},
        customers=await customers.names_of(firm.id) if spec.format == "iif" else {},
    )
    summary = Summary(spec, period)
    write = WRITERS[spec.format]

    def written_batch(batch: list[Row]) -> None:
        summary.add(batch)
        on_rows(len(batch))

    written = await consume_in_thread(
        selection_of(firm, spec, period).batches(), lambda rows: write(rows, out, context), written_batch
    )
    return Report(firm, spec, period, summary, written)
