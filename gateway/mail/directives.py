"""The directive grammar: what staff write in a mail to ``pay@<firm>``.

Pure functions only: no I/O and no clock (callers pass ``now``), so every
rule is pinned by table-driven tests.

A payment request is read in two steps:

1. *grammar* (grammar.py) turns the subject's words and the body's leading ``Key: value``
   lines into (key, raw value) pairs: ``$1,250.00`` becomes ("amount",
   "$1,250.00"), ``Invoice 1042`` ("invoice", "1042"), a bare address
   ("to", address), ``+fee`` ("fee", "yes");
2. *meaning* (values.py) reads each key's values (present, well formed, no two that
   disagree) and collects every error, so one reply lists all the fixes.

The title is the subject's free words joined by single spaces. Prose the
sender wrote stays: ``Invoice 1042`` and ``#1042`` read naturally in the
client's subject line. Directives, amounts and addresses are left out, and
a request whose free words contain the password is refused.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import partial
from typing import Callable

from gateway.core.models import RequestKind
from gateway.mail.grammar import KEYS, SUBJECT_TOKEN, DirectiveError, read_body, read_subject
from gateway.mail.values import (
    AUTO_PASSWORD, check_secrecy, check_title, mask, read_address, read_customer, read_expiry, read_fee, read_hint,
    read_invoice, read_lang, read_remind, read_upload, redact, resolve, resolve_money, resolve_password, values_of,
)

# What only a payment has: named when a secure message (secure@) carries it.
_PAYMENT_ONLY = ("amount", "currency", "fee", "customer")
_NOT_IN_A_MESSAGE = (
    "A secure message (secure@) carries no payment, so {key} has no place in it: take it out, "
    "or send the mail to pay@ to request a payment."
)
_NO_CLIENT = (
    "There is no client address: add one like to=jane@client.example to the "
    "subject, or a line To: jane@client.example at the top of the body."
)
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|tr)\s*:\s*)+", re.IGNORECASE)
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no i, l, o, 0, 1: read aloud, retyped
_PASSWORD_GROUPS = 4
_PASSWORD_GROUP_LENGTH = 4  # 16 characters of 31: about 79 bits


@dataclass(frozen=True)
class PaymentDirectives:
    """A payment request as the sender asked for it, checked."""

    client: str
    amount_minor: int
    currency: str
    invoice: str
    password: str = field(repr=False)
    password_generated: bool
    hint: str
    pass_fee: bool
    expires_at: datetime
    title: str
    # The message is sealed under the password, so it stays out of logs too.
    message: str = field(repr=False)
    # The client's name as a QuickBooks customer (customer="Smith, Jane"), for the IIF export.
    customer: str = ""
    # payment (pay@) or message (secure@: no amount, no fee, nothing to pay).
    kind: RequestKind = RequestKind.PAYMENT
    # The documents asked of the client (upload="T4 slips, ..."), a checklist on their page.
    upload_items: tuple[str, ...] = ()
    # remind=no: the firm's reminder schedule leaves this request alone.
    remind: bool = True
    # The client's language (lang=fr), else the firm's default ("" = none chosen).
    lang: str = ""


class DirectivesRejected(Exception):
    """The request cannot be made; ``errors`` lists every fix, none shows the password."""

    def __init__(self, errors: list[DirectiveError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{error.directive}: {error.message}" for error in errors))


def generate_password() -> str:
    """A strong password a client can read and type: "k7mq-3xbz-..."."""
    groups = (
        "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_GROUP_LENGTH))
        for _ in range(_PASSWORD_GROUPS)
    )
    return "-".join(groups)


def strip_reply_prefixes(subject: str) -> str:
    """The subject without "Re:", "Fwd:", "AW:" ... in front."""
    return _REPLY_PREFIX.sub("", subject).strip()


def parse_request(
    subject: str,
    body: str,
    *,
    firm_currency: str,
    limit_minor: int | None,
    default_fee: bool,
    now: datetime,
    default_ttl_days: int = 30,
    generate_password: Callable[[], str] = generate_password,
    zone: tzinfo | None = None,
    kind: RequestKind = RequestKind.PAYMENT,
    default_lang: str = "",
) -> PaymentDirectives:
    """Read a payment request (or, for kind message, a secure message: the
    same directives less the payment's); raise DirectivesRejected listing
    every error.

    ``limit_minor`` is the firm's cap per request, in minor units of
    ``firm_currency``. A request in another currency is compared at face
    value (no exchange rates), so 5,000 is the cap in any currency.
    ``zone`` is the firm's: an expiry date ends at the end of that day
    there (default: ``now``'s zone).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    errors: list[DirectiveError] = []
    pairs, title_words = read_subject(strip_reply_prefixes(subject), errors)
    body_pairs, message = read_body(body)
    pairs += body_pairs

    client = resolve("to", values_of(pairs, "to"), read_address, errors, missing=_NO_CLIENT)
    if kind is RequestKind.MESSAGE:
        errors += [DirectiveError(key, _NOT_IN_A_MESSAGE.format(key=key)) for key in _PAYMENT_ONLY
                   if values_of(pairs, key)]
        currency, amount_minor = firm_currency, 0
    else:
        currency, amount_minor = resolve_money(pairs, firm_currency, limit_minor, errors)
    invoice = resolve("invoice", values_of(pairs, "invoice"), read_invoice, errors) or ""
    password, generated = resolve_password(pairs, errors, generate_password)
    hint = resolve("hint", values_of(pairs, "hint"), read_hint, errors) or ""
    fee = resolve("fee", values_of(pairs, "fee"), read_fee, errors)
    read_expiry_here = partial(read_expiry, now=now, zone=zone or now.tzinfo)
    expires_at = resolve("expires", values_of(pairs, "expires"), read_expiry_here, errors)
    customer = resolve("customer", values_of(pairs, "customer"), read_customer, errors) or ""
    upload_items = resolve("upload", values_of(pairs, "upload"), read_upload, errors) or ()
    remind = resolve("remind", values_of(pairs, "remind"), read_remind, errors)
    lang = resolve("lang", values_of(pairs, "lang"), read_lang, errors)
    title = " ".join(title_words)
    check_title(title, errors)
    check_secrecy(password, hint, title, errors, upload_items)

    if errors:
        given = [raw.strip() for raw in values_of(pairs, "pw")] + [password]
        raise DirectivesRejected(redact(errors, given))
    return PaymentDirectives(
        client=client,
        amount_minor=amount_minor,
        currency=currency,
        invoice=invoice,
        password=password,
        password_generated=generated,
        hint=hint,
        pass_fee=default_fee if fee is None else fee,
        expires_at=expires_at or now + timedelta(days=default_ttl_days),
        title=title,
        message=message,
        customer=customer,
        kind=kind,
        upload_items=upload_items,
        remind=True if remind is None else remind,
        lang=lang or default_lang,
    )


_SECRET_KEYS = ("pw", "hint")


def redact_subject(subject: str, body: str = "") -> str:
    """The subject with the values of pw=, password= and hint= replaced by
    "…", so a reply can quote it without echoing the password (a hint may
    wrongly contain it), and every other place the password stands (given
    in the subject or in the body's key lines) replaced by *** too: a
    careless sender may repeat it anywhere (``to=Secret pw=Secret``)."""
    def hide(token: re.Match) -> str:
        if token["key"] and KEYS.get(token["key"].lower()) in _SECRET_KEYS:
            return f"{token['key']}=…"
        return token.group()

    pairs, _words = read_subject(strip_reply_prefixes(subject), [])
    pairs += read_body(body)[0]
    passwords = [raw.strip() for raw in values_of(pairs, "pw") if raw.strip().lower() != AUTO_PASSWORD]
    return mask(SUBJECT_TOKEN.sub(hide, subject), passwords)
