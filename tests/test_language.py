"""The client's language: lang= on a request, else the firm's default
(clienttrack firm language), for the client's mail and pages; staff hear
in English whatever the client's language."""

from __future__ import annotations

import httpx

from gateway.core.models import Firm, PaymentRequest
from gateway.mail.directives import DirectivesRejected, parse_request
from tests.conftest import DEMO_STAFF, mails_to, request_mail, send, settled
from tests.test_cli import run
from tests.test_flow import only_link


def flat(text: object) -> str:
    """Text with every run of white space (no-break spaces too) as one space."""
    return " ".join(str(text).split())


def test_lang_takes_en_or_fr_and_names_anything_else():
    from datetime import datetime, timezone

    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    read = lambda subject, default="": parse_request(subject, "", firm_currency="CAD", limit_minor=None,  # noqa: E731
                                                     default_fee=False, now=now, default_lang=default)
    assert read("$10 to=a@b.example pw=x lang=fr").lang == "fr"
    assert read("$10 to=a@b.example pw=x lang=FR-CA").lang == "fr"
    assert read("$10 to=a@b.example pw=x language=English", default="fr").lang == "en"
    assert read("$10 to=a@b.example pw=x", default="fr").lang == "fr"
    assert read("$10 to=a@b.example pw=x").lang == ""
    try:
        read("$10 to=a@b.example pw=x lang=de")
    except DirectivesRejected as rejected:
        assert [e.directive for e in rejected.errors] == ["lang"] and "fr" in rejected.errors[0].message
    else:
        raise AssertionError("lang=de was accepted")


async def test_the_firms_default_language_applies_when_a_request_names_none(gateway):
    await Firm.filter(domain="demo.localhost").update(language="fr")
    await send(gateway, request_mail("Invoice 7 $99.95 to=jean@client.example pw=Bleu42 hint=Ciel"))
    await send(gateway, request_mail("Invoice 8 $10.00 to=ann@client.example pw=Blue42 hint=Sky lang=en"))
    await settled()
    assert {r.invoice: r.lang for r in await PaymentRequest.all()} == {"7": "fr", "8": "en"}
    [french] = mails_to(gateway, "jean@client.example")
    assert flat(french["Subject"]) == "Demande de paiement sécurisée de Demo Accounting : Invoice 7 — 99,95 $ CAD"
    [english] = mails_to(gateway, "ann@client.example")
    assert flat(english["Subject"]) == "Secure payment request from Demo Accounting: Invoice 8 — $10.00 CAD"
    # The confirmations to the staff member stay in English.
    assert all(flat(m["Subject"]).startswith("Sent: Invoice") for m in mails_to(gateway, DEMO_STAFF))

    link = only_link(french)
    async with httpx.AsyncClient() as http:
        page = await http.get(link, headers={"accept-language": "en-CA,en;q=0.9"})
        assert "Vous avez une demande de paiement sécurisée" in page.text and 'lang="fr"' in page.text
        # The switch wins, and is remembered.
        chosen = await http.get(link + "?lang=en")
        assert "You have a secure payment request" in chosen.text
        again = await http.get(link)
        assert "You have a secure payment request" in again.text


def test_firm_language_at_the_command_line(tmp_path):
    assert run(tmp_path, "firm", "add", "x.example", "--name", "X").returncode == 0
    assert "none (the browser decides)" in run(tmp_path, "firm", "language", "x.example").stdout
    set_fr = run(tmp_path, "firm", "language", "x.example", "fr")
    assert set_fr.returncode == 0 and "clients' language fr" in set_fr.stdout
    wrong = run(tmp_path, "firm", "language", "x.example", "de")
    assert wrong.returncode == 1 and "unknown language 'de'" in wrong.stderr
    assert "clients' language fr" in run(tmp_path, "firm", "language", "x.example").stdout
