"""What every writer is given and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gateway.reports.periods import Period


@dataclass(frozen=True)
class Context:
    firm_name: str
    firm_domain: str
    # The firm's own currency: the books a journal import posts to.
    firm_currency: str
    period: Period
    status: str
    # Firm.ledger_accounts: account names or numbers by role (see ledger.py).
    ledger_accounts: Mapping[str, Any] = field(default_factory=dict)
    # The firm's QuickBooks customers by client address (reports/customers.py), for IIF.
    customers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    """What a writer produced: the file's extension and media type, and
    anything the reader of the summary must know (rows left out...)."""

    extension: str
    media_type: str
    notes: tuple[str, ...] = ()


CSV = "text/csv"
ZIP = "application/zip"
