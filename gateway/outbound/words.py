"""The client's mail in the client's language: the strings of the mails a
client reads (the request or secure message, its reminders, the receipt),
one JSON file a language in locales/. Mail to staff stays in English."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.core.language import LANGUAGES, Words, chosen

_LOCALES = Path(__file__).resolve().parent / "locales"
_CATALOGUE: dict[str, dict[str, str]] = {
    lang: json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES
}
# One Words a language: the same object every time, so that a mail's
# template frames (gateway/outbound/frames.py) can know it by identity.
_WORDS = {lang: Words(lang, strings) for lang, strings in _CATALOGUE.items()}


def words(lang: str) -> Words:
    """The mail's words in ``lang`` (a stored request language: "" is English)."""
    return _WORDS[chosen(lang)]
