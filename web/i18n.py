"""English and (Canadian) French for the client's pages.

The language comes from ``?lang=`` (which the switch on every page sets,
and which is then kept in a cookie), else the cookie, else the browser's
Accept-Language, else English. Strings are plain text: templates escape
them like any other value.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from babel import numbers as babel_numbers

from gateway.core.money import CURRENCY_DECIMALS, CURRENCY_SYMBOLS, format_decimal, format_display

LANGUAGES = ("en", "fr")
DEFAULT = "en"
COOKIE = "ct_lang"
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
}

# The strings, one JSON file a language (web/locales/). Plurals: "key_one"
# for 1, "key_other" for the rest (French also uses "_one" for 0, which
# never comes up here).
LOCALES = Path(__file__).resolve().parent / "locales"
CATALOGUE: dict[str, dict[str, str]] = {
    lang: json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES
}

# The dashboard's strings (web/staff/), "staff_..." keys, in files of their own.
for _lang in LANGUAGES:
    CATALOGUE[_lang].update(json.loads((LOCALES / f"staff.{_lang}.json").read_text(encoding="utf-8")))


def from_accept_language(header: str) -> str | None:
    """The first of our languages the browser asks for, by its q-values."""
    choices = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else None


def choose(query: str | None, cookie: str | None, accept_language: str) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return from_accept_language(accept_language) or DEFAULT


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._strings = CATALOGUE[lang]

    def __call__(self, key: str, **values: object) -> str:
        return self._strings[key].format(**values)

    def plural(self, key: str, count: int, **values: object) -> str:
        return self(f"{key}_{'one' if count == 1 else 'other'}", count=count, **values)

    @property
    def other(self) -> str:
        """The language the switch offers."""
        return next(code for code in LANGUAGES if code != self.lang)

    def amount(self, minor: int, currency: str) -> str:
        """"$1,250.00 CAD" in English, "1 250,00 $ CAD" in French."""
        if self.lang == "en":
            return format_display(minor, currency)
        # The number as CLDR writes it in Canadian French (babel): grouping and
        # decimal comma from the locale's data, not from a hand-kept rule.
        decimals = CURRENCY_DECIMALS.get(currency, 2)
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
        number = babel_numbers.format_decimal(Decimal(format_decimal(minor, currency)), format=pattern,
                                              locale="fr_CA", decimal_quantization=False)
        symbol = CURRENCY_SYMBOLS.get(currency)
        return f"{number}\u00a0{symbol} {currency}" if symbol else f"{number}\u00a0{currency}"

    def amount_short(self, minor: int, currency: str) -> str:
        """The amount without its currency code ("$102.40", "102,40 $") when
        the context already says the currency (a firm's own); a currency
        without a sign keeps its code."""
        full = self.amount(minor, currency)
        if not CURRENCY_SYMBOLS.get(currency):
            return full
        return full.removesuffix(f" {currency}")

    def date(self, day: datetime.date) -> str:
        month = MONTHS[self.lang][day.month - 1]
        return f"{month} {day.day}, {day.year}" if self.lang == "en" else f"{day.day} {month} {day.year}"

    def wait(self, seconds: float) -> str:
        """A wait rounded up to a unit a person reads at a glance."""
        seconds = max(1, int(seconds + 0.999))
        if seconds < 60:
            return self.plural("seconds", seconds)
        minutes = -(-seconds // 60)
        if minutes < 120:
            return self.plural("minutes", minutes)
        hours = -(-minutes // 60)
        if hours < 48:
            return self.plural("hours", hours)
        return self.plural("days", -(-hours // 24))

    def size(self, count: int) -> str:
        if count < 1000:
            return self("bytes", count=count)
        if count < 1000 * 1000:
            return self("kb", count=max(1, round(count / 1000)))
        text = f"{count / 1_000_000:.1f}"
        return self("mb", count=text.replace(".", ",") if self.lang == "fr" else text)


class LanguageMiddleware:
    """Puts the chosen language in ``request.state.lang``, and remembers a
    choice made with ``?lang=`` in a cookie."""

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # Most requests carry neither a choice nor the cookie: parse only when they might.
        query_string = scope.get("query_string", b"")
        query = parse_qs(query_string.decode("latin-1")).get("lang", [None])[-1] if b"lang" in query_string else None
        cookies = headers.get("cookie", "")
        cookie = cookie_parser(cookies).get(COOKIE) if COOKIE in cookies else None
        lang = choose(query, cookie, headers.get("accept-language", ""))
        scope.setdefault("state", {})["lang"] = lang
        if query not in LANGUAGES or query == cookie:
            await self.app(scope, receive, send)
            return

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                morsel = SimpleCookie()
                morsel[COOKIE] = lang
                # Lax, unlike the secret cookies: a language is no secret, and
                # it should hold when the client arrives from the email's link.
                morsel[COOKIE].update({"path": "/", "max-age": str(365 * 24 * 3600), "samesite": "Lax"})
                if self.secure:
                    morsel[COOKIE]["secure"] = True
                value = morsel.output(header="").strip()
                message.setdefault("headers", []).append((b"set-cookie", value.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, remember)
