"""Reading a payment request, step 2 (see directives.py): each key's values
read and checked (present, well formed, no two that disagree), every error
collected so that one reply lists all the fixes."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from functools import partial
from typing import Callable, TypeVar

from gateway.core.money import CURRENCY_DECIMALS, MoneyError, format_display, to_minor
from gateway.mail.grammar import ADDRESS, INVOICE, DirectiveError, Pairs

T = TypeVar("T")
_PLURALS = {
    "to": "client addresses", "amount": "amounts", "currency": "currencies",
    "invoice": "invoice numbers", "pw": "passwords", "hint": "hints",
    "fee": "fee choices", "expires": "expiry dates", "customer": "customer names",
    "upload": "document lists", "remind": "reminder choices", "lang": "languages",
}
_NO_AMOUNT = "There is no amount: add one like $1,250.00, 1250 CAD or amount=1250.00."
_NO_PASSWORD = (
    'There is no password: add pw=YourPassword (quoted if it has spaces: pw="two words"), '
    "or pw=auto to have a strong one made for you."
)
_FEE_WORDS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
AUTO_PASSWORD = "auto"
_MAX_TTL_DAYS = 365
_CODE_SHAPE = re.compile(r"[A-Za-z]{3}")
_DAYS = re.compile(r"(?P<days>\d+)\s*d(?:ays?)?", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit
# What the client sees in the clear, as long as the request's columns take
# (PaymentRequest.hint and .title): longer is a mistake to reply about, not
# an error at the insert (which once quarantined the message, unanswered).
MAX_HINT_LENGTH = 200
MAX_TITLE_LENGTH = 300


class _Invalid(ValueError):
    """A value is wrong; the message is the sentence for the sender."""


def values_of(pairs: Pairs, key: str) -> list[str]:
    return [value for pair_key, value in pairs if pair_key == key]


def resolve(
    key: str,
    raws: list[str],
    read: Callable[[str], T],
    errors: list[DirectiveError],
    *,
    missing: str = "",
) -> T | None:
    """The one value ``key`` was given, or None.

    Records an error for each value ``read`` refuses, for two values that
    disagree, and (when ``missing`` is given) for no value at all.
    """
    if not raws and missing:
        errors.append(DirectiveError(key, missing))
    values: list[T] = []
    for raw in raws:
        try:
            values.append(read(raw))
        except _Invalid as invalid:
            errors.append(DirectiveError(key, str(invalid)))
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        errors.append(DirectiveError(
            key, f"The request gives two different {_PLURALS[key]}; keep just one."
        ))
        return None
    return distinct[0] if distinct else None


def read_address(raw: str) -> str:
    address = raw.strip().removeprefix("<").removesuffix(">")
    if len(address) > _MAX_ADDRESS_LENGTH or not ADDRESS.fullmatch(address):
        raise _Invalid(
            f"{raw.strip()!r} is not a complete email address; "
            "write the client's address like to=jane@client.example."
        )
    return address.lower()


def resolve_money(
    pairs: Pairs, firm_currency: str, limit_minor: int | None, errors: list[DirectiveError]
) -> tuple[str, int]:
    """Currency first, then the amount: the currency says how many decimals it may have.

    A code beside an amount ("1250 CAD") counts as a currency directive.
    The amount is 0 when missing or wrong (an error says so).
    """
    raws = values_of(pairs, "amount")
    if not raws:
        errors.append(DirectiveError("amount", _NO_AMOUNT))
    numbers: list[str] = []
    codes: list[str] = []
    for raw in raws:
        try:
            number, code = _split_amount(raw)
        except _Invalid as invalid:
            errors.append(DirectiveError("amount", str(invalid)))
            continue
        numbers.append(number)
        codes += [code] if code else []

    errors_before = len(errors)
    currency = resolve("currency", values_of(pairs, "currency") + codes, _read_currency, errors)
    if len(errors) > errors_before:
        return firm_currency, 0  # a wrong currency has no decimals to check the amount by
    currency = currency or firm_currency
    amount = resolve("amount", numbers, partial(_read_amount, currency=currency), errors)
    if amount is None:
        return currency, 0
    if limit_minor is not None and _over_limit(amount, currency, limit_minor, firm_currency):
        errors.append(DirectiveError(
            "amount",
            f"{format_display(amount, currency)} is over your firm's limit of "
            f"{format_display(limit_minor, firm_currency)} per request; "
            "ask an admin of your firm to raise the limit.",
        ))
    return currency, amount


def _split_amount(raw: str) -> tuple[str, str | None]:
    """ "1250 CAD", "CAD 1250" or "1250" as (number, code or None)."""
    parts = raw.split()
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        first, second = parts
        if _CODE_SHAPE.fullmatch(second):
            return first, second
        if _CODE_SHAPE.fullmatch(first):
            return second, first
    raise _Invalid(
        "The amount is not understood; write it like amount=1250.00, $1,250.00 or 1250 CAD."
        if parts else "The amount is empty; write it like amount=1250.00."
    )


def _read_currency(raw: str) -> str:
    code = raw.strip().upper()
    if code not in CURRENCY_DECIMALS:
        raise _Invalid(
            f"{raw.strip()!r} is not a currency this gateway knows; "
            "use a 3-letter ISO code such as CAD, USD or EUR."
        )
    return code


def _read_amount(number: str, currency: str) -> int:
    try:
        return to_minor(number, currency)
    except MoneyError as error:
        raise _Invalid(str(error)) from error


def _over_limit(amount: int, currency: str, limit: int, firm_currency: str) -> bool:
    # Cross-multiplied to the same number of decimals: integers only.
    scaled_amount = amount * 10 ** CURRENCY_DECIMALS[firm_currency]
    return scaled_amount > limit * 10 ** CURRENCY_DECIMALS[currency]


def read_customer(raw: str) -> str:
    """A QuickBooks customer name: at most 41 characters (QuickBooks' limit), one line."""
    name = " ".join(raw.split())
    if not name or len(name) > 41 or any(c in name for c in '\t"'):
        raise _Invalid('The customer is the client\'s name in QuickBooks, at most 41 characters, like '
                       'customer="Smith, Jane".')
    return name


MAX_UPLOAD_ITEMS = 20
MAX_UPLOAD_ITEM_LENGTH = 80
# The client's languages, as a sender may write them.
_LANGUAGES = {"en": "en", "en-ca": "en", "english": "en", "anglais": "en",
              "fr": "fr", "fr-ca": "fr", "french": "fr", "français": "fr", "francais": "fr"}


def read_upload(raw: str) -> tuple[str, ...]:
    """The documents asked of the client, comma-separated: each one a line of
    the checklist on the client's page."""
    items = tuple(dict.fromkeys(" ".join(item.split()) for item in raw.split(",") if item.strip()))
    if not items:
        raise _Invalid('upload= names the documents you ask the client for, separated by commas, like '
                       'upload="T4 slips, signed engagement letter".')
    if len(items) > MAX_UPLOAD_ITEMS or any(len(item) > MAX_UPLOAD_ITEM_LENGTH for item in items):
        raise _Invalid(f"upload= takes at most {MAX_UPLOAD_ITEMS} documents of at most "
                       f"{MAX_UPLOAD_ITEM_LENGTH} characters each.")
    return items


def read_remind(raw: str) -> bool:
    try:
        return _FEE_WORDS[raw.strip().lower()]
    except KeyError:
        raise _Invalid("remind takes yes or no: remind=no means the client is never reminded automatically.") from None


def read_lang(raw: str) -> str:
    """The client's language: en or fr (Canadian French)."""
    try:
        return _LANGUAGES[raw.strip().lower().replace("_", "-")]
    except KeyError:
        raise _Invalid("lang takes en (English) or fr (French): lang=fr writes the client's mail and pages "
                       "in French.") from None


def read_invoice(raw: str) -> str:
    invoice = raw.strip().removeprefix("#")
    if not INVOICE.fullmatch(invoice):
        raise _Invalid(
            "The invoice number should be one word of letters, digits and - . / "
            "(at most 40), like invoice=1042 or invoice=INV-7."
        )
    return invoice


def resolve_password(
    pairs: Pairs, errors: list[DirectiveError], generate: Callable[[], str]
) -> tuple[str, bool]:
    """The password and whether it was made here; "" when missing (an error says so)."""
    password = resolve("pw", values_of(pairs, "pw"), _read_password, errors, missing=_NO_PASSWORD)
    if password is None:
        return "", False
    if password.lower() == AUTO_PASSWORD:
        return generate(), True
    return password, False


def _read_password(raw: str) -> str:
    password = raw.strip()
    if not password:
        raise _Invalid('The password is empty; write it like pw=Blue42, or pw=auto.')
    return password


def read_fee(raw: str) -> bool:
    try:
        return _FEE_WORDS[raw.strip().lower()]
    except KeyError:
        raise _Invalid(
            "fee takes yes or no: fee=yes adds the card processing fee to what the client pays."
        ) from None


def read_expiry(raw: str, now: datetime, zone: tzinfo) -> datetime:
    """``14d`` is 14 days from now; ``2026-12-31`` the end of that day in the
    firm's zone. Either form at most _MAX_TTL_DAYS ahead (a date far off,
    9999-12-31, once overflowed the arithmetic in zones east of UTC)."""
    text = raw.strip()
    if days := _DAYS.fullmatch(text):
        count = int(days["days"])
        if not 1 <= count <= _MAX_TTL_DAYS:
            raise _Invalid(
                f"The expiry must be between 1 and {_MAX_TTL_DAYS} days, like expires=14d."
            )
        return now + timedelta(days=count)
    try:
        day = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        raise _Invalid(
            f"The expiry {text!r} is not understood; write a number of days like "
            "expires=14d or a date like expires=2026-12-31."
        )
    # Compared as dates first: no datetime is made from a date out of range.
    today = now.astimezone(zone).date()
    last = (now + timedelta(days=_MAX_TTL_DAYS)).astimezone(zone).date()
    if day < today:
        raise _Invalid(
            f"The expiry date {day.isoformat()} is in the past; give a later date "
            "or a number of days like expires=14d."
        )
    if day > last:
        raise _Invalid(
            f"The expiry date {day.isoformat()} is too far off: at most {_MAX_TTL_DAYS} days ahead, "
            f"{last.isoformat()} or sooner."
        )
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def read_hint(raw: str) -> str:
    hint = raw.strip()
    if len(hint) > MAX_HINT_LENGTH:
        raise _Invalid(f"The hint is {len(hint)} characters; at most {MAX_HINT_LENGTH} fit: shorten it.")
    return hint


def check_title(title: str, errors: list[DirectiveError]) -> None:
    """The subject's free words become the client's subject line: bounded."""
    if len(title) > MAX_TITLE_LENGTH:
        errors.append(DirectiveError(
            "subject", f"The subject's free text, the client's subject line, is {len(title)} characters; "
            f"at most {MAX_TITLE_LENGTH} fit: shorten it."))


def check_secrecy(password: str, hint: str, title: str, errors: list[DirectiveError],
                  upload_items: tuple[str, ...] = ()) -> None:
    """The client sees the hint, the title and the checklist of documents in
    the clear: none may hold the password."""
    if not password:
        return
    if any(password.casefold() in item.casefold() for item in upload_items):
        errors.append(DirectiveError(
            "upload", "A document in upload= contains the password, and the checklist is shown before the "
                      "password is typed; name the documents without it.",
        ))
    if password.casefold() in hint.casefold():
        errors.append(DirectiveError(
            "hint",
            "The hint gives the password away: it contains it. Write a hint only "
            'the client can answer, like hint="Dog\'s name".',
        ))
    if password.casefold() in title.casefold():
        errors.append(DirectiveError(
            "pw",
            "The password also appears in the subject's free text, which the client "
            "sees in the clear; take it out of the text or choose another password.",
        ))


def redact(errors: list[DirectiveError], passwords: list[str]) -> list[DirectiveError]:
    """Messages with every password given replaced by ***.

    Messages echo what was written (an address, a date, a currency), and a
    careless password could be any of those: this makes "never in a reply"
    hold whatever the sender typed.
    """
    return [DirectiveError(error.directive, mask(error.message, passwords)) for error in errors]


def mask(text: str, passwords: list[str]) -> str:
    """``text`` with every password (any case) replaced by ***, longest first."""
    for secret in sorted({p for p in passwords if p}, key=len, reverse=True):
        text = re.sub(re.escape(secret), "***", text, flags=re.IGNORECASE)
    return text
