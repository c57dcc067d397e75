"""Reading a payment request, step 1 (see directives.py): the subject's
words and the body's leading ``Key: value`` lines become (key, raw value)
pairs; the subject's other words are its free words (the title)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from gateway.core.money import CURRENCY_DECIMALS, CURRENCY_SYMBOLS


@dataclass(frozen=True)
class DirectiveError:
    """One thing to fix: the key to change and a sentence saying how."""

    directive: str
    message: str


Pairs = list[tuple[str, str]]  # (key, raw value) in the order written
# Every spelling of a key, to the name errors use ("directive").
KEYS = {
    "to": "to", "client": "to",
    "amount": "amount",
    "currency": "currency",
    "invoice": "invoice", "inv": "invoice",
    "pw": "pw", "password": "pw",
    "hint": "hint",
    "fee": "fee",
    "expires": "expires",
    "customer": "customer",
    "upload": "upload", "uploads": "upload",
    "remind": "remind",
    "lang": "lang", "language": "lang",
}
# Outlook turns "x" into “x”, and sometimes closes with the opening quote.
_QUOTES = "\"“”„"
SUBJECT_TOKEN = re.compile(
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
_SIGNATURE_LINES = ("-- ", "--")
_SYMBOL_CHARS = re.escape("".join(sorted(set(CURRENCY_SYMBOLS.values()))))
_SYMBOL_AMOUNT = re.compile(rf"-?[{_SYMBOL_CHARS}]-?\d[\d,.]*")  # an amount on its own
_NUMBER = re.compile(r"-?\d[\d,.]*")  # an amount only beside a currency code
INVOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")
_HASH_INVOICE = re.compile(r"#(?P<number>[A-Za-z0-9][A-Za-z0-9._/-]*)")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")


def read_subject(subject: str, errors: list[DirectiveError]) -> tuple[Pairs, list[str]]:
    """The subject's directives as pairs, and its free words."""
    pairs: Pairs = []
    words: list[str] = []
    for token in SUBJECT_TOKEN.finditer(subject):
        if token["word"] is not None:
            words.append(token["word"])
            continue
        typed = token["key"].lower()
        key = KEYS.get(typed)
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


def _unknown_key_message(typed: str) -> str:
    guess = difflib.get_close_matches(typed, KEYS, n=1)
    hint = f" Did you mean {guess[0]}=?" if guess else ""
    return (
        f"{typed}= is not a directive this gateway knows.{hint} The directives are "
        "to=, amount=, currency=, invoice=, pw=, hint=, fee=, expires=, customer=, upload=, remind= and lang=."
    )


def _read_words(words: list[str], pairs: Pairs) -> list[str]:
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
        elif ADDRESS.fullmatch(bare):
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
    return INVOICE.fullmatch(word.removeprefix("#")) is not None and _has_digit(word)


def _is_code(word: str) -> bool:
    # Only known codes: "FYI 2025" must stay text.
    return word.upper() in CURRENCY_DECIMALS


def _is_amount_word(word: str) -> bool:
    return bool(_SYMBOL_AMOUNT.fullmatch(word) or _NUMBER.fullmatch(word))


def read_body(body: str) -> tuple[Pairs, str]:
    """The body's leading ``Key: value`` lines as pairs, and the message after them.

    Key lines end at the first line that is not one (a blank line, or a key
    this grammar does not know, such as "Note:"). The message loses its
    signature: everything from a line that is exactly "-- " (or "--").
    """
    lines = body.splitlines()
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    pairs: Pairs = []
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
    if match is None or match["key"].lower() not in KEYS:
        return None
    return KEYS[match["key"].lower()], _unquote(match["value"].strip())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] in _QUOTES and value[-1] in _QUOTES:
        return value[1:-1]
    return value
