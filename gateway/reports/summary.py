"""The reply's text: what the file holds, per currency, and the exact dates.

Per currency: how many requests, and over those whose money moved (paid,
even if refunded or disputed since) the same sums a spreadsheet gets by
adding up the file's columns over those rows: amounts, card fees, gross
(total charged), provider fees, platform fees, net and refunds, as rows.py
defines them. The XLSX totals row is made from the same rows, so the two
always agree.
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
    amount_minor: int = 0
    card_fee_minor: int = 0
    gross_minor: int = 0
    provider_fee_minor: int = 0
    platform_fee_minor: int = 0
    net_minor: int = 0
    refunded_minor: int = 0
    # Payments whose provider fee is not known yet: no net, not in net_minor.
    net_unknown: int = 0

    @property
    def fees_minor(self) -> int:
        return self.provider_fee_minor + self.platform_fee_minor

    def add(self, row: Row) -> None:
        self.count += 1
        if not row.received:
            return
        self.paid += 1
        self.amount_minor += row.amount_minor
        self.card_fee_minor += row.fee_minor or 0
        self.gross_minor += row.total_minor or 0
        self.provider_fee_minor += row.provider_fee_minor or 0
        self.platform_fee_minor += row.application_fee_minor or 0
        self.refunded_minor += row.refunded_minor or 0
        net = row.net_minor
        if net is None:
            self.net_unknown += 1
        else:
            self.net_minor += net


class Summary:
    def __init__(self, spec: ReportSpec, period: Period) -> None:
        self.spec, self.period = spec, period
        self.by_currency: dict[str, Totals] = {}
        # Secure messages (secure@): no money, so in no currency's figures.
        self.messages = 0

    @property
    def count(self) -> int:
        return sum(t.count for t in self.by_currency.values()) + self.messages

    def add(self, rows: Iterable[Row]) -> None:
        by_currency = self.by_currency
        for row in rows:
            if row.amount_minor is None:
                self.messages += 1
                continue
            totals = by_currency.get(row.currency)
            if totals is None:
                totals = by_currency[row.currency] = Totals()
            totals.add(row)

    def text(self, firm_name: str, notes: Iterable[str] = ()) -> str:
        if self.spec.status != ALL:
            which = f"{self.spec.status} payment requests"
        else:
            which = "payments received" if self.spec.payments_only else "payment requests"
        scope = f"{self.period.word}: {self.period.dates}"
        if not self.by_currency and not self.messages:
            return f"No {which} at {firm_name} in {scope}."
        lines = [f"{firm_name}: {self.spec.format} report of {which}, {scope}."]
        for currency in sorted(self.by_currency):
            lines.append(_currency_line(currency, self.by_currency[currency]))
        if self.messages:
            lines.append(f"Secure messages (no payment, no amounts): {self.messages}.")
        lines.extend(notes)
        lines.append(f"Times are in {self.period.zone.key}; amounts are in each request's currency. Charged "
                     "amounts are only for money received (a declined or unpaid request has none). Net is the "
                     "total charged less the payment provider's and the platform's fees; refunds are shown apart.")
        return "\n".join(lines)


def _currency_line(currency: str, t: Totals) -> str:
    requests = f"{t.count} request{'s' if t.count != 1 else ''}"
    if not t.paid:
        return f"{currency}: {requests}, none paid."
    def show(minor: int) -> str:
        return format_display(minor, currency)

    money = (f"gross {show(t.gross_minor)} (invoices {show(t.amount_minor)}, card fees {show(t.card_fee_minor)}), "
             f"provider fees {show(t.provider_fee_minor)}, platform fees {show(t.platform_fee_minor)}, "
             f"net {show(t.net_minor)}")
    if t.refunded_minor:
        money += f"; refunded {show(t.refunded_minor)}"
    line = f"{currency}: {requests}, {t.paid} paid: {money}."
    if t.net_unknown:
        line += (f" {t.net_unknown} payment{'s' if t.net_unknown != 1 else ''} without a known provider fee yet: "
                 "no net, and not in the net above.")
    return line
