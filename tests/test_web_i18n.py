"""English and Canadian French: choosing, formatting, remembering."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from web.i18n import CATALOGUE, LanguageMiddleware, Translator, choose, from_accept_language

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


@pytest.mark.parametrize("header, lang", [
    ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
    ("en-CA,en;q=0.9,fr-CA;q=0.8", "en"),
    ("de-DE,fr;q=0.5,en;q=0.4", "fr"),
    ("en;q=0.2, fr;q=0.9", "fr"),
    ("fr;q=0, en", "en"),
    ("de, es", None),
    ("", None),
    ("fr;q=bogus, en", "en"),
])
def test_the_browser_language_is_read_by_preference(header, lang):
    assert from_accept_language(header) == lang


def test_a_choice_beats_the_cookie_which_beats_the_browser():
    assert choose("fr", "en", "en") == "fr"
    assert choose(None, "fr", "en") == "fr"
    assert choose("xx", None, "fr-CA") == "fr"
    assert choose(None, None, "de") == "en"


def test_both_languages_have_every_string():
    assert CATALOGUE["en"].keys() == CATALOGUE["fr"].keys()


def test_amounts_dates_sizes_and_waits_read_naturally():
    en, fr = Translator("en"), Translator("fr")
    assert en.amount(125000, "CAD") == "$1,250.00 CAD"
    assert fr.amount(125000, "CAD") == "1\u00a0250,00\u00a0$ CAD"
    assert fr.amount(5000, "JPY") == "5\u00a0000\u00a0¥ JPY"
    assert fr.amount(999, "SEK") == "9,99\u00a0SEK"
    assert en.date(date(2026, 12, 31)) == "December 31, 2026"
    assert fr.date(date(2026, 12, 1)) == "1 décembre 2026"
    assert (en.size(512), en.size(48_000), en.size(2_345_678)) == ("512 bytes", "48 KB", "2.3 MB")
    assert (fr.size(512), fr.size(2_345_678)) == ("512 octets", "2,3 Mo")
    assert [en.wait(s) for s in (1, 29.2, 60, 900, 1800, 7200, 4 * 86400)] == \
        ["1 second", "30 seconds", "1 minute", "15 minutes", "30 minutes", "2 hours", "4 days"]
    assert fr.wait(900) == "15 minutes" and fr.wait(3 * 3600) == "3 heures"
    assert fr.plural("wrong", 1).startswith("Ce mot de passe") and "1 essai " in fr.plural("wrong", 1)
    assert "3 more tries" in en.plural("wrong", 3)


async def test_the_middleware_sets_the_language_and_remembers_a_switch():
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.lang)

    app = LanguageMiddleware(Starlette(routes=[Route("/", page)]), secure=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x.example") as http:
        assert (await http.get("/", headers={"accept-language": "fr-CA"})).text == "fr"
        switched = await http.get("/?lang=fr")
        assert switched.text == "fr"
        cookie = switched.headers["set-cookie"]
        assert cookie.startswith("ct_lang=fr;") and "Secure" in cookie and "SameSite=Lax" in cookie
        again = await http.get("/")
        assert again.text == "fr" and "set-cookie" not in again.headers
        assert (await http.get("/?lang=klingon")).text == "fr"
