"""What the accounting formats tell the reader about payments they leave
out or record with a caveat, for the reply's summary."""

from __future__ import annotations

from gateway.reports.rows import Row


class Tally:
    """Counts, row by row, what the summary must mention.

    A journal (``one_currency``) posts in the firm's currency and would
    need an exchange rate for any other: those payments are left out.
    A refunded payment is recorded as received: the model keeps no date
    for the refund itself.
    """

    def __init__(self, fmt: str, firm_currency: str, *, one_currency: bool) -> None:
        self.fmt, self.firm_currency, self.one_currency = fmt, firm_currency, one_currency
        self.left_out: dict[str, int] = {}
        self.refunded = 0

    def keep(self, row: Row) -> bool:
        if self.one_currency and row.currency != self.firm_currency:
            self.left_out[row.currency] = self.left_out.get(row.currency, 0) + 1
            return False
        self.refunded += row.status == "refunded"
        return True

    def notes(self) -> tuple[str, ...]:
        found = []
        if self.left_out:
            counts = ", ".join(f"{count} in {currency}" for currency, count in sorted(self.left_out.items()))
            found.append(
                f"Left out of the {self.fmt} file: {counts}. A journal import posts in the firm's currency "
                f"({self.firm_currency}) and would need an exchange rate; the csv or xlsx report lists them."
            )
        if self.refunded:
            found.append(
                f"{self.refunded} payment{'s were' if self.refunded != 1 else ' was'} refunded later: recorded "
                "here as received, as the refund's own date is not known here; record the refund from the "
                "provider's statement."
            )
        return tuple(found)
