"""English and (Canadian) French for the client's pages.

The language comes from ``?lang=`` (which the switch on every page sets,
and which is then kept in a cookie), else the cookie, else the language
the request was sent in (lang=, or the firm's: web/client.py applies it
once the request is found), else the browser's Accept-Language, else
English. Strings are plain text: templates escape
them like any other value.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.language import DEFAULT, LANGUAGES, Words

COOKIE = "ct_lang"
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}

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


class Translator(Words):
    """The pages' strings in one language (amounts and dates as
    gateway/core/language.py writes them)."""

    def __init__(self, lang: str) -> None:
        super().__init__(lang, CATALOGUE[lang])

    @property
    def other(self) -> str:
        """The language the switch offers."""
        return next(code for code in LANGUAGES if code != self.lang)

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
    """Puts the chosen language in ``request.state.lang`` (and in
    ``request.state.lang_chosen`` whether the client chose it, by the switch
    or its cookie), and remembers a choice made with ``?lang=`` in a cookie."""

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
        scope.setdefault("state", {}).update(lang=lang, lang_chosen=query in LANGUAGES or cookie in LANGUAGES)
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
