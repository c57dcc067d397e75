"""The directive grammar: what staff write in a mail to ``pay@<firm>``.

Pure functions only: no I/O and no clock (callers pass ``now``), so every
rule is pinned by table-driven tests.

A payment request is read in two steps:

1. *grammar* turns the subject's words and the body's leading ``Key: value``
   lines into (key, raw value) pairs: ``$1,250.00`` becomes ("amount",
   "$1,250.00"), ``Invoice 1042`` ("invoice", "1042"), a bare address
   ("to", address), ``+fee`` ("fee", "yes");
2. *meaning* reads each key's values (present, well formed, no two that
   disagree) and collects every error, so one reply lists all the fixes.

The title is the subject's free words joined by single spaces. Prose the
sender wrote stays: ``Invoice 1042`` and ``#1042`` read naturally in the
client's subject line. Directives, amounts and addresses are left out, and
a request whose free words contain the password is refused.
"""

from __future__ import annotations

import difflib
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Callable, TypeVar

from gateway.core.money import CURRENCY_DECIMALS, CURRENCY_SYMBOLS, MoneyError, format_display, to_minor

T = TypeVar("T")
_Pairs = list[tuple[str, str]]  # (key, raw value) in the order written

# Every spelling of a key, to the name errors use ("directive").
_KEYS = {
    "to": "to", "client": "to",
    "amount": "amount",
    "currency": "currency",
    "invoice": "invoice", "inv": "invoice",
    "pw": "pw", "password": "pw",
    "hint": "hint",
    "fee": "fee",
    "expires": "expires",
}
_PLURALS = {
    "to": "client addresses", "amount": "amounts", "currency": "currencies",
    "invoice": "invoice numbers", "pw": "passwords", "hint": "hints",
    "fee": "fee choices", "expires": "expiry dates",
}
_NO_CLIENT = (
    "There is no client address: add one like to=jane@client.example to the "
    "subject, or a line To: jane@client.example at the top of the body."
)
_NO_AMOUNT = "There is no amount: add one like $1,250.00, 1250 CAD or amount=1250.00."
_NO_PASSWORD = (
    'There is no password: add pw=YourPassword (quoted if it has spaces: pw="two words"), '
    "or pw=auto to have a strong one made for you."
)
_FEE_WORDS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_AUTO_PASSWORD = "auto"
_MAX_TTL_DAYS = 365

# Outlook turns "x" into “x”, and sometimes closes with the opening quote.
_QUOTES = "\"“”„"
_SUBJECT_TOKEN = re.compile(
    rf"""
    (?P<key>[A-Za-z][A-Za-z0-9_-]*)=
    (?:
        [{_QUOTES}](?P<quoted>[^{_QUOTES}]*)[{_QUOTES}]
      | (?P<unclosed>[{_QUOTES}].*)
      | (?P<bare>\S*)
    )
  | (?P<word>\S+)
    """,
    re.VERBOSE,
)
_BODY_KEY_LINE = re.compile(r"(?P<key>[A-Za-z]+)\s*:\s*(?P<value>.*)")
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|tr)\s*:\s*)+", re.IGNORECASE)
_SIGNATURE_LINES = ("-- ", "--")

_SYMBOL_CHARS = re.escape("".join(sorted(set(CURRENCY_SYMBOLS.values()))))
_SYMBOL_AMOUNT = re.compile(rf"-?[{_SYMBOL_CHARS}]-?\d[\d,.]*")  # an amount on its own
_NUMBER = re.compile(r"-?\d[\d,.]*")  # an amount only beside a currency code
_CODE_SHAPE = re.compile(r"[A-Za-z]{3}")
_INVOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")
_HASH_INVOICE = re.compile(r"#(?P<number>[A-Za-z0-9][A-Za-z0-9._/-]*)")
_DAYS = re.compile(r"(?P<days>\d+)\s*d(?:ays?)?", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
_MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit

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


@dataclass(frozen=True)
class DirectiveError:
    """One thing to fix: the key to change and a sentence saying how."""

    directive: str
    message: str


class DirectivesRejected(Exception):
    """The request cannot be made; ``errors`` lists every fix, none shows the password."""

    def __init__(self, errors: list[DirectiveError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{error.directive}: {error.message}" for error in errors))


class _Invalid(ValueError):
    """A value is wrong; the message is the sentence for the sender."""


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
) -> PaymentDirectives:
    """Read a payment request; raise DirectivesRejected listing every error.

    ``limit_minor`` is the firm's cap per request, in minor units of
    ``firm_currency``. A request in another currency is compared at face
    value (no exchange rates), so 5,000 is the cap in any currency.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    errors: list[DirectiveError] = []
    pairs, title_words = _read_subject(strip_reply_prefixes(subject), errors)
    body_pairs, message = _read_body(body)
    pairs += body_pairs

    client = _resolve("to", _values(pairs, "to"), _read_address, errors, missing=_NO_CLIENT)
    currency, amount_minor = _resolve_money(pairs, firm_currency, limit_minor, errors)
    invoice = _resolve("invoice", _values(pairs, "invoice"), _read_invoice, errors) or ""
    password, generated = _resolve_password(pairs, errors, generate_password)
    hint = _resolve("hint", _values(pairs, "hint"), str.strip, errors) or ""
    fee = _resolve("fee", _values(pairs, "fee"), _read_fee, errors)
    read_expiry = partial(_read_expiry, now=now)
    expires_at = _resolve("expires", _values(pairs, "expires"), read_expiry, errors)
    title = " ".join(title_words)
    _check_secrecy(password, hint, title, errors)

    if errors:
        given = [raw.strip() for raw in _values(pairs, "pw")] + [password]
        raise DirectivesRejected(_redact(errors, given))
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
    )


# --- grammar: subject and body to (key, raw value) pairs -------------------


def _read_subject(subject: str, errors: list[DirectiveError]) -> tuple[_Pairs, list[str]]:
    """The subject's directives as pairs, and its free words."""
    pairs: _Pairs = []
    words: list[str] = []
    for token in _SUBJECT_TOKEN.finditer(subject):
        if token["word"] is not None:
            words.append(token["word"])
            continue
        typed = token["key"].lower()
        key = _KEYS.get(typed)
        if key is None:
            errors.append(DirectiveError(typed, _unknown_key_message(typed)))
        elif token["unclosed"] is not None:
            errors.append(DirectiveError(
                key, f"The value of {typed}= opens a quote but never closes it; "
                f'close it like {typed}="two words".'
            ))
        else:
            pairs.append((key, token["quoted"] if token["quoted"] is not None else token["bare"]))
    return pairs, _read_words(words, pairs)


_SECRET_KEYS = ("pw", "hint")


def redact_subject(subject: str) -> str:
    """The subject with the values of pw=, password= and hint= replaced by
    "…", so a reply can quote it without echoing the password (a hint may
    wrongly contain it)."""
    def hide(token: re.Match) -> str:
        if token["key"] and _KEYS.get(token["key"].lower()) in _SECRET_KEYS:
            return f"{token['key']}=…"
        return token.group()

    return _SUBJECT_TOKEN.sub(hide, subject)


def _unknown_key_message(typed: str) -> str:
    guess = difflib.get_close_matches(typed, _KEYS, n=1)
    hint = f" Did you mean {guess[0]}=?" if guess else ""
    return (
        f"{typed}= is not a directive this gateway knows.{hint} The directives are "
        "to=, amount=, currency=, invoice=, pw=, hint=, fee= and expires=."
    )


def _read_words(words: list[str], pairs: _Pairs) -> list[str]:
    """Add the directives written as plain words to pairs; return the free words."""
    dropped: set[int] = set()  # read as a directive: not part of the title
    taken: set[int] = set()  # already read: not to be read again
    for i, word in enumerate(words):
        if i in taken:
            continue
        bare = _trim(word)
        following = _trim(words[i + 1]) if i + 1 < len(words) else ""
        if bare.lower() == "+fee":
            pairs.append(("fee", "yes"))
            dropped.add(i)
        elif _ADDRESS.fullmatch(bare):
            pairs.append(("to", bare))
            dropped.add(i)
        elif bare.lower() == "invoice" and _is_invoice_number(following):
            pairs.append(("invoice", following))
            taken.add(i + 1)
        elif (hashed := _HASH_INVOICE.fullmatch(bare)) and _has_digit(bare):
            pairs.append(("invoice", hashed["number"]))
        elif _is_code(bare) and _is_amount_word(following):
            pairs.append(("amount", f"{following} {bare}"))
            taken.add(i + 1)
            dropped.update({i, i + 1})
        elif _is_amount_word(bare) and _is_code(following):
            pairs.append(("amount", f"{bare} {following}"))
            taken.add(i + 1)
            dropped.update({i, i + 1})
        elif _SYMBOL_AMOUNT.fullmatch(bare):
            pairs.append(("amount", bare))
            dropped.add(i)
    return [word for i, word in enumerate(words) if i not in dropped]


def _trim(word: str) -> str:
    """A word without the brackets and sentence punctuation around it."""
    return word.strip("<>()[]").rstrip(".,;:!?")


def _has_digit(text: str) -> bool:
    return any(char.isdigit() for char in text)


def _is_invoice_number(word: str) -> bool:
    return _INVOICE.fullmatch(word.removeprefix("#")) is not None and _has_digit(word)


def _is_code(word: str) -> bool:
    # Only known codes: "FYI 2025" must stay text.
    return word.upper() in CURRENCY_DECIMALS


def _is_amount_word(word: str) -> bool:
    return bool(_SYMBOL_AMOUNT.fullmatch(word) or _NUMBER.fullmatch(word))


def _read_body(body: str) -> tuple[_Pairs, str]:
    """The body's leading ``Key: value`` lines as pairs, and the message after them.

    Key lines end at the first line that is not one (a blank line, or a key
    this grammar does not know, such as "Note:"). The message loses its
    signature: everything from a line that is exactly "-- " (or "--").
    """
    lines = body.splitlines()
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    pairs: _Pairs = []
    while start < len(lines) and (pair := _body_pair(lines[start])):
        pairs.append(pair)
        start += 1
    message_lines = lines[start:]
    for end, text in enumerate(message_lines):
        if text in _SIGNATURE_LINES:
            message_lines = message_lines[:end]
            break
    return pairs, "\n".join(message_lines).strip()


def _body_pair(line: str) -> tuple[str, str] | None:
    match = _BODY_KEY_LINE.fullmatch(line.strip())
    if match is None or match["key"].lower() not in _KEYS:
        return None
    return _KEYS[match["key"].lower()], _unquote(match["value"].strip())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] in _QUOTES and value[-1] in _QUOTES:
        return value[1:-1]
    return value


# --- meaning: one checked value per key ------------------------------------


def _values(pairs: _Pairs, key: str) -> list[str]:
    return [value for pair_key, value in pairs if pair_key == key]


def _resolve(
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


def _read_address(raw: str) -> str:
    address = raw.strip().removeprefix("<").removesuffix(">")
    if len(address) > _MAX_ADDRESS_LENGTH or not _ADDRESS.fullmatch(address):
        raise _Invalid(
            f"{raw.strip()!r} is not a complete email address; "
            "write the client's address like to=jane@client.example."
        )
    return address.lower()


def _resolve_money(
    pairs: _Pairs, firm_currency: str, limit_minor: int | None, errors: list[DirectiveError]
) -> tuple[str, int]:
    """Currency first, then the amount: the currency says how many decimals it may have.

    A code beside an amount ("1250 CAD") counts as a currency directive.
    The amount is 0 when missing or wrong (an error says so).
    """
    raws = _values(pairs, "amount")
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
    currency = _resolve("currency", _values(pairs, "currency") + codes, _read_currency, errors)
    if len(errors) > errors_before:
        return firm_currency, 0  # a wrong currency has no decimals to check the amount by
    currency = currency or firm_currency
    amount = _resolve("amount", numbers, partial(_read_amount, currency=currency), errors)
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


def _read_invoice(raw: str) -> str:
    invoice = raw.strip().removeprefix("#")
    if not _INVOICE.fullmatch(invoice):
        raise _Invalid(
            "The invoice number should be one word of letters, digits and - . / "
            "(at most 40), like invoice=1042 or invoice=INV-7."
        )
    return invoice


def _resolve_password(
    pairs: _Pairs, errors: list[DirectiveError], generate: Callable[[], str]
) -> tuple[str, bool]:
    """The password and whether it was made here; "" when missing (an error says so)."""
    password = _resolve("pw", _values(pairs, "pw"), _read_password, errors, missing=_NO_PASSWORD)
    if password is None:
        return "", False
    if password.lower() == _AUTO_PASSWORD:
        return generate(), True
    return password, False


def _read_password(raw: str) -> str:
    password = raw.strip()
    if not password:
        raise _Invalid('The password is empty; write it like pw=Blue42, or pw=auto.')
    return password


def _read_fee(raw: str) -> bool:
    try:
        return _FEE_WORDS[raw.strip().lower()]
    except KeyError:
        raise _Invalid(
            "fee takes yes or no: fee=yes adds the card processing fee to what the client pays."
        ) from None


def _read_expiry(raw: str, now: datetime) -> datetime:
    """``14d`` is 14 days from now; ``2026-12-31`` the end of that day in now's time zone."""
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
    expires_at = datetime.combine(day, time(23, 59, 59), tzinfo=now.tzinfo)
    if expires_at <= now:
        raise _Invalid(
            f"The expiry date {day.isoformat()} is in the past; give a later date "
            "or a number of days like expires=14d."
        )
    return expires_at


def _check_secrecy(password: str, hint: str, title: str, errors: list[DirectiveError]) -> None:
    """The client sees the hint and the title in the clear: neither may hold the password."""
    if not password:
        return
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


def _redact(errors: list[DirectiveError], passwords: list[str]) -> list[DirectiveError]:
    """Messages with every password given replaced by ***.

    Messages echo what was written (an address, a date, a currency), and a
    careless password could be any of those: this makes "never in a reply"
    hold whatever the sender typed.
    """
    patterns = [re.compile(re.escape(secret), re.IGNORECASE) for secret in passwords if secret]

    def hide(text: str) -> str:
        for pattern in patterns:
            text = pattern.sub("***", text)
        return text

    return [DirectiveError(error.directive, hide(error.message)) for error in errors]
