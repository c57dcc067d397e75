"""A paid request as a balanced journal entry, and the accounts it posts to.

For each payment, in the currency it was paid in:

    debit  clearing     net (what the provider will pay out)
    debit  fees         provider fee + application fee
    credit receivable   total - surcharge (the invoice the client settled)
    credit surcharge    the fee passed on to the client, if any

Debits equal credits by construction (net + fees = total); entry() checks
it anyway, to the cent, because an unbalanced entry makes the accounting
program refuse the whole file. Zero lines are left out; two roles on the
same account stay two lines, so the fees and the surcharge both show.

Accounts are a firm setting, Firm.ledger_accounts, one map per program:

    {"iif":  {"clearing": "Stripe Clearing", "fees": "Bank Charges"},
     "sage": {"clearing": "1090", "receivable": "1210", "fees": "5700"}}

Roles left out take the defaults below. QuickBooks wants account names;
Sage 50 wants account numbers, and refuses general-journal lines on a
*linked* account (its receivables account 1200 once history is finished,
payables 2100...): one such line and the whole import posts nothing. So
Sage's default "receivable" is 1250, a clearing account ("payments to
apply") the firm settles against its invoices in Receivables, never the
linked A/R; the summary names the accounts used and how to change them,
and warns when a firm points a role at a linked default.
The surcharge credits merchant fees by default: it exists to cover them.
"""

from __future__ import annotations

from typing import Any, Mapping

from gateway.reports.rows import Row

ROLES = ("clearing", "fees", "receivable", "surcharge")
DEFAULTS: dict[str, dict[str, str]] = {
    "iif": {
        "clearing": "Undeposited Funds",
        "fees": "Merchant Fees",
        "receivable": "Accounts Receivable",
        "surcharge": "Merchant Fees",
    },
    "sage": {
        "clearing": "1090",
        "fees": "5700",
        "receivable": "1250",
        "surcharge": "5700",
    },
}
# Sage 50's linked accounts in its default chart of accounts: the general
# journal may not post to them (Setup > Settings > Linked Accounts shows a
# firm's own). 1200 Accounts Receivable, 2100 Accounts Payable.
SAGE_LINKED = {"1200": "Accounts Receivable", "2100": "Accounts Payable"}
ROLE_WORDS = {"clearing": "payments clearing", "fees": "payment fees", "receivable": "invoices paid",
              "surcharge": "card fees charged"}


class UnbalancedEntry(AssertionError):
    """A journal entry whose debits and credits differ: a bug, never written."""


def accounts(setting: Mapping[str, Any] | None, program: str) -> dict[str, str]:
    """The account per role for ``program`` ("iif" or "sage"), defaults filled in."""
    chosen = (setting or {}).get(program) or {}
    return {role: str(chosen.get(role) or DEFAULTS[program][role]).strip() for role in ROLES}


def accounts_note(program: str, firm_domain: str, chosen: Mapping[str, str]) -> list[str]:
    """For the summary: the accounts the file posts to, how to change them,
    and a warning for any Sage linked account among them."""
    used = ", ".join(f"{ROLE_WORDS[role]} {chosen[role]} ({role})" for role in ROLES)
    notes = [f"Accounts used: {used}. Create them in {'Sage 50' if program == 'sage' else 'QuickBooks'} or "
             f"change them with: clienttrack firm accounts {firm_domain} {program} ROLE=ACCOUNT."]
    if program == "sage":
        for role in ROLES:
            if chosen[role] in SAGE_LINKED:
                notes.append(f"Warning: {chosen[role]} ({SAGE_LINKED[chosen[role]]}) is a linked account in "
                             f"Sage 50's default chart; Sage refuses general-journal lines on linked accounts, "
                             f"and then imports nothing. Point {role} at another account.")
    return notes


def entry(row: Row, accounts_by_role: Mapping[str, str]) -> list[tuple[str, int]]:
    """(account, minor units) lines, debits positive, credits negative, summing to zero."""
    roles = (
        # Unknown provider fee: the whole total clears (the fee is booked when known).
        ("clearing", row.total_minor - row.fees_minor),
        ("fees", row.fees_minor),
        ("receivable", -(row.total_minor - row.fee_minor)),
        ("surcharge", -row.fee_minor),
    )
    lines = [(accounts_by_role[role], minor) for role, minor in roles if minor]
    if sum(minor for _, minor in lines):
        raise UnbalancedEntry(f"request {row.id}: {lines}")
    return lines


def reference(row: Row, limit: int) -> str:
    """The entry's document number: the invoice when it fits the program's field, else the request's id."""
    invoice = row.invoice.strip()
    return invoice if 0 < len(invoice) <= limit else f"CT{row.id}"[:limit]
