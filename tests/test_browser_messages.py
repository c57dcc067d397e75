"""Secure messages and the client's language in a real browser (Debian's
Chromium through Playwright, as tests/test_browser.py does), from the mail
in the outbox: a secure@ message with two files and no amount, and a
lang=fr request read in French from the mail to the receipt."""

from __future__ import annotations

import hashlib
import re

from gateway.core.models import PaymentRequest, RequestKind, RequestStatus
from tests.conftest import DEMO_STAFF, mails_to, request_mail, send, settled
from tests.test_browser import (IN_THE_BROWSERS_LOOP, browser, download_each, follow,  # noqa: F401 (fixtures)
                                gateway, new_page, shoot, unlock_with)
from tests.test_flow import only_link
from tests.test_language import flat

pytestmark = IN_THE_BROWSERS_LOOP

PDF = b"%PDF-1.4\n" + hashlib.sha256(b"return").digest() * 8000 + b"\n%%EOF\n"  # 256 KB: several chunks
CSV = "slip,amount\nT4,52000.00\nRelevé 1,été\n".encode()


async def test_a_secure_message_with_two_files_and_no_amount_opens_in_chromium(gateway, browser, tmp_path):
    files = {"return-2025.pdf": ("application/pdf", PDF), "Relevé 1.csv": ("text/csv", CSV)}
    message = request_mail('Your 2025 tax return to=jane@client.example pw=Blue42 hint="First pet"',
                           body="Hello Jane,\n\nYour return is ready; please review it.\n\nSam",
                           attachments=[(name, kind, data) for name, (kind, data) in files.items()])
    del message["To"]
    message["To"] = "secure@demo.localhost"
    await send(gateway, message, rcpt="secure@demo.localhost")
    await settled()
    [mail] = mails_to(gateway, "jane@client.example")
    assert str(mail["Subject"]) == "Secure message from Demo Accounting: Your 2025 tax return"
    link = only_link(mail)

    page, errors = await new_page(browser)
    await page.goto(link)
    assert await page.get_by_role("heading", level=1).inner_text() == "You have a secure message"
    summary = await page.locator("dl.summary").inner_text()
    assert "Demo Accounting" in summary and "Your 2025 tax return" in summary and "$" not in summary
    await shoot(page, "message-unlock")
    await unlock_with(page, "Blue42")

    assert await page.get_by_role("heading", level=1).inner_text() == "Your message from Demo Accounting"
    assert "Your return is ready" in await page.locator(".message").inner_text()
    assert await page.get_by_role("link", name=re.compile("^Pay")).count() == 0
    assert await page.get_by_role("button", name=re.compile("^Pay")).count() == 0
    await download_each(page, files, tmp_path)
    await shoot(page, "message-secure")
    request = await PaymentRequest.get()
    assert request.kind is RequestKind.MESSAGE and request.status is RequestStatus.VIEWED
    assert errors == []


async def test_a_french_request_is_in_french_from_the_mail_to_the_receipt(gateway, browser):
    await send(gateway, request_mail('Facture 1042 $1,250.00 invoice=1042 to=jean@client.example pw=Bleu42 '
                                     'hint="Premier animal" lang=fr',
                                     body="Bonjour Jean,\n\nVotre facture est jointe.\n"))
    await settled()
    [mail] = mails_to(gateway, "jean@client.example")
    # (Mail headers and lines are cleaned to plain spaces; the pages keep French's no-break spaces.)
    assert flat(mail["Subject"]) == "Demande de paiement sécurisée de Demo Accounting : Facture 1042 — 1 250,00 $ CAD"
    text = flat(mail.get_body(("plain",)).get_content())
    assert "Demo Accounting vous a envoyé une demande de paiement sécurisée." in text
    assert "Montant dû: 1 250,00 $ CAD" in text and "Voir votre courriel" in text
    assert "Indice du mot de passe : Premier animal" in text
    html = mail.get_body(("html",)).get_content()
    assert '<html lang="fr"' in html and "Envoyé de façon sécurisée par clienttrack" in html
    [confirmation] = mails_to(gateway, DEMO_STAFF)  # staff hear in their own language
    assert str(confirmation["Subject"]) == "Sent: Invoice 1042 to jean@client.example"
    assert "Client's language: French" in " ".join(confirmation.get_body(("plain",)).get_content().split())
    link = only_link(mail)

    # An English browser: the request's language decides until the client switches.
    page, errors = await new_page(browser)
    await page.goto(link)
    assert await page.get_by_role("heading", level=1).inner_text() == "Vous avez une demande de paiement sécurisée"
    assert "1 250,00 $ CAD" in flat(await page.locator("dl.summary").inner_text())
    await page.get_by_label("Mot de passe").fill("Bleu42")
    await follow(page, page.get_by_role("button", name="Ouvrir mon message"))
    assert await page.get_by_role("heading", level=1).inner_text() == "Votre message de Demo Accounting"
    await shoot(page, "message-lang-fr")
    await follow(page, page.get_by_role("link", name=re.compile("^Payer")))
    await page.get_by_label("Numéro de carte").fill("4242 4242 4242 4242")
    await follow(page, page.get_by_role("button", name=re.compile("^Payer")).first)
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert heading.startswith("Vous avez payé") and "Demo Accounting" in heading
    await shoot(page, "paid-lang-fr")
    assert errors == []

    await settled()
    [receipt] = [m for m in mails_to(gateway, "jean@client.example") if "Reçu" in str(m["Subject"])]
    assert flat(receipt["Subject"]).startswith("[TEST] Reçu : ")
    said = flat(receipt.get_body(("plain",)).get_content())
    assert "Merci. Vous avez payé" in said and "Total payé" in said and "Payé par: carte de crédit" in said
    assert "Conservez ce courriel comme reçu." in said and "Il s’agissait d’un paiement TEST" in said
    assert '<html lang="fr"' in receipt.get_body(("html",)).get_content()
    [notice] = [m for m in mails_to(gateway, DEMO_STAFF) if str(m["Subject"]).startswith("[TEST] Paid")]
    assert "paid" in notice.get_body(("plain",)).get_content()


async def test_an_upload_request_shows_its_checklist_and_ticks_a_line_when_its_file_arrives(gateway, browser,
                                                                                              tmp_path):
    message = request_mail('Documents for 2025 to=jane@client.example pw=Blue42 hint="First pet" '
                           'upload="T4 slips, signed engagement letter"', body="Hello Jane,\nplease send these.\n")
    del message["To"]
    message["To"] = "secure@demo.localhost"
    await send(gateway, message, rcpt="secure@demo.localhost")
    await settled()
    [mail] = mails_to(gateway, "jane@client.example")
    link = only_link(mail)
    slip = tmp_path / "T4 slip.pdf"
    slip.write_bytes(PDF)

    page, errors = await new_page(browser)
    await page.goto(link)
    await unlock_with(page, "Blue42")
    checklist = page.locator("ul.checklist li")
    assert await checklist.count() == 2
    assert await page.locator("ul.checklist li.waiting").count() == 2
    await shoot(page, "reply-checklist")

    await page.get_by_label("Your message").fill("Here is my T4; the letter follows.")
    assert await page.get_by_label("This reply is for").input_value() == "0"  # the first line still waiting
    await page.get_by_label("Files").set_input_files(str(slip))
    await follow(page, page.get_by_role("button", name="Send securely"))

    assert "Your reply was sent securely to Demo Accounting." in await page.get_by_role("status").first.inner_text()
    received = page.locator("ul.checklist li.received")
    assert await received.count() == 1
    assert "T4 slips" in await received.inner_text() and "Received" in await received.inner_text()
    assert "signed engagement letter" in await page.locator("ul.checklist li.waiting").inner_text()
    assert await page.get_by_label("This reply is for").input_value() == "1"  # now the letter
    assert await page.get_by_role("link", name="T4 slip.pdf").count() == 1  # what was sent
    await shoot(page, "reply-sent")
    assert errors == []

    # The staff member opens the notice's link in their own browser: the password first.
    await settled()
    [notice] = [m for m in mails_to(gateway, DEMO_STAFF) if "Secure reply" in str(m["Subject"])]
    [staff_link] = re.findall(r"https?://\S+/staff/replies/[A-Za-z0-9_-]{43}", notice.get_body(("plain",)).get_content())
    staff, staff_errors = await new_page(browser)
    await staff.goto(staff_link)
    assert "Here is my T4" not in await staff.locator("main").inner_text()
    await shoot(staff, "staff-reply-locked")
    await staff.get_by_label("Password").fill("Blue42")
    await follow(staff, staff.get_by_role("button", name="Open the replies"))
    assert "Here is my T4; the letter follows." in await staff.locator("article.reply").inner_text()
    async with staff.expect_download() as started:
        await staff.get_by_role("link", name="T4 slip.pdf").click()
    await (await started.value).save_as(tmp_path / "staff-copy.pdf")
    assert (tmp_path / "staff-copy.pdf").read_bytes() == PDF
    await shoot(staff, "staff-reply-open")
    assert staff_errors == []
