"""The words of `report FORMAT PERIOD [STATUS]`, read into a ReportSpec.

The same words arrive by mail (the subject after "report") and from the
command line, so both read them here. Each error names the wrong word and
lists the choices, so the sender can fix it from their phone.

STATUS defaults to ``all``. The accounting formats (iif, qbo, xero, sage)
record money received, so they take only requests that were paid (and
possibly refunded since); asking them for ``sent`` requests is an error.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from gateway.core.models import RequestStatus
from gateway.reports.periods import choices_text

FORMATS = ("csv", "xlsx", "json", "iif", "qbo", "xero", "sage")
ALIASES = {"excel": "xlsx"}
# Formats that write money received as accounting entries or bank lines.
PAYMENT_FORMATS = frozenset({"iif", "qbo", "xero", "sage"})
ALL = "all"
STATUSES = tuple(status.value for status in RequestStatus) + (ALL,)
PAYMENT_STATUSES = (RequestStatus.PAID.value, RequestStatus.REFUNDED.value, ALL)
EXAMPLE = "report xlsx last-month paid"

_FORMAT_CHOICES = "csv, xlsx (or excel), json, iif (QuickBooks Desktop), qbo (QuickBooks Online), xero or sage (Sage 50)"


class GrammarError(ValueError):
    """The words are wrong; the message names the word and the choices."""


@dataclass(frozen=True)
class ReportSpec:
    format: str
    period_word: str
    status: str = ALL

    @property
    def payments_only(self) -> bool:
        """True when only requests with money received belong in the file."""
        return self.format in PAYMENT_FORMATS


def parse_report_args(args: tuple[str, ...] | list[str]) -> ReportSpec:
    """Read FORMAT PERIOD [STATUS]. The PERIOD word is checked later, with the firm's clock."""
    words = [word.strip() for word in args if word.strip()]
    if not words:
        raise GrammarError(f"Say which format and period, like: {EXAMPLE}. Formats: {_FORMAT_CHOICES}.")
    fmt = parse_format(words[0])
    if len(words) < 2:
        raise GrammarError(f"Say which period, like: report {fmt} last-month. {_period_choices()}")
    status = parse_status(words[2], fmt) if len(words) > 2 else ALL
    if len(words) > 3:
        extra = " ".join(words[3:])
        raise GrammarError(f"{extra!r} is more than a report takes: write report FORMAT PERIOD [STATUS], like: {EXAMPLE}.")
    return ReportSpec(fmt, words[1], status)


def parse_format(word: str) -> str:
    text = word.lower()
    text = ALIASES.get(text, text)
    if text in FORMATS:
        return text
    raise GrammarError(f"{word!r} is not a report format{_suggest(text, FORMATS + tuple(ALIASES))}: choose {_FORMAT_CHOICES}.")


def parse_status(word: str, fmt: str) -> str:
    text = word.lower()
    if text not in STATUSES:
        raise GrammarError(f"{word!r} is not a status{_suggest(text, STATUSES)}: choose {', '.join(STATUSES)}.")
    if fmt in PAYMENT_FORMATS and text not in PAYMENT_STATUSES:
        raise GrammarError(
            f"{fmt} records payments received, and {text} requests have none: "
            f"choose {', '.join(PAYMENT_STATUSES)}, or use csv or xlsx for {text} requests."
        )
    return text


def _period_choices() -> str:
    return f"Periods: {choices_text()}."


def _suggest(text: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(text, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
