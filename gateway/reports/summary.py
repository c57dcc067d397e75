"""The reply's text: what the file holds, per currency, and the exact dates.

Per currency: how many requests, and over those paid (even if refunded
since) the gross (total charged), the fees (provider's and platform's)
and the net (gross - fees), as rows.py defines them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from gateway.core.money import format_display
from gateway.reports.grammar import ALL, ReportSpec
from gateway.reports.periods import Period
from gateway.reports.rows import Row


@dataclass
class Totals:
    count: int = 0
    paid: int = 0
    gross_minor: int = 0
    fees_minor: int = 0
    net_minor: int = 0


class Summary:
    def __init__(self, spec: ReportSpec, period: Period) -> None:
        self.spec, self.period = spec, period
        self.by_currency: dict[str, Totals] = {}

    @property
    def count(self) -> int:
        return sum(t.count for t in self.by_currency.values())

    def add(self, rows: Iterable[Row]) -> None:
        by_currency = self.by_currency
        for row in rows:
            totals = by_currency.get(row.currency)
            if totals is None:
                totals = by_currency[row.currency] = Totals()
            totals.count += 1
            if row.received:
                fees = row.fees_minor
                totals.paid += 1
                totals.gross_minor += row.total_minor
                totals.fees_minor += fees
                totals.net_minor += row.total_minor - fees

    def text(self, firm_name: str, notes: Iterable[str] = ()) -> str:
        if self.spec.status != ALL:
            which = f"{self.spec.status} payment requests"
        else:
            which = "payments received" if self.spec.payments_only else "payment requests"
        scope = f"{self.period.word}: {self.period.dates}"
        if not self.by_currency:
            return f"No {which} at {firm_name} in {scope}."
        lines = [f"{firm_name}: {self.spec.format} report of {which}, {scope}."]
        for currency in sorted(self.by_currency):
            lines.append(_currency_line(currency, self.by_currency[currency]))
        lines.extend(notes)
        lines.append(f"Times are in {self.period.zone.key}. Net is the total charged less the payment "
                     "provider's and platform's fees.")
        return "\n".join(lines)


def _currency_line(currency: str, t: Totals) -> str:
    requests = f"{t.count} request{'s' if t.count != 1 else ''}"
    if not t.paid:
        return f"{currency}: {requests}, none paid."
    money = (f"gross {format_display(t.gross_minor, currency)}, fees {format_display(t.fees_minor, currency)}, "
             f"net {format_display(t.net_minor, currency)}")
    return f"{currency}: {requests}, {t.paid} paid: {money}."
