"""The dashboard in a real browser: Debian's Chromium driven by Playwright,
against the whole gateway, starting from the `dashboard` mail.

Every page is checked by axe-core (WCAG 2.2 A and AA) and kept as
screenshots at 375 and 1280 px in test-output/screenshots/staff-*.png
(tests/test_browser.py's shoot). Without Chromium this fails, never skips.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest_asyncio
from playwright.async_api import Page, expect

from gateway.core import directory
from gateway.core.models import Firm, Level, PaymentRequest, RequestStatus, Staff
from gateway.service import running
from tests import axe
from tests.conftest import make_settings, mails_to, request_mail, send, settled
from tests.staff_support import ADMIN, LINK, add_requests
from tests.test_browser import (IN_THE_BROWSERS_LOOP, PDF, browser, follow, gateway,  # noqa: F401  (fixtures)
                                new_page, shoot)

pytest_plugins = ["tests.web_fixtures"]
pytestmark = IN_THE_BROWSERS_LOOP
CSV = "date,amount\n2026-03-01,1250.00\nRelevé,été\n".encode()


async def mailed_link(gw, sender: str = ADMIN) -> str:
    """Send `dashboard` as ``sender``; the link in the reply."""
    await send(gw, request_mail("dashboard", sender=sender))
    await settled()
    reply = mails_to(gw, sender)[-1]
    [link] = LINK.findall(reply.get_body(("plain",)).get_content())
    return link


async def sign_in(page: Page, link: str) -> None:
    await page.goto(link)
    await follow(page, page.get_by_role("button", name="Sign in"))
    await expect(page).to_have_url(re.compile(r"/staff/$"))


@pytest_asyncio.fixture(loop_scope="session")
async def clocked(tmp_path, clock):
    """web_fixtures.py's clocked, in the browsers' loop."""
    async with running(make_settings(tmp_path), clock=clock) as gw:
        yield gw


def client_cells(page: Page):
    return page.locator("table.requests td.client a")


async def test_a_staff_member_from_the_dashboard_mail_through_every_page(gateway, browser, tmp_path):  # noqa: F811
    firm = await Firm.get(domain="demo.localhost")
    await directory.add_staff(firm, "sam@demo.localhost", Level.SEND, now=gateway.deps.clock(), actor="test")
    for invoice, client in (("1042", "jane@client.example"), ("1043", "bob@client.example")):
        await send(gateway, request_mail(f"Invoice {invoice} $125.00 to={client} pw=Blue42 hint=\"First pet\""))
    await settled()
    await PaymentRequest.filter(invoice="1043").update(status=RequestStatus.PAID, paid_at=gateway.deps.clock())
    await add_requests(gateway, 3, status=RequestStatus.CANCELLED, start=gateway.deps.clock() - timedelta(days=3))
    page, errors = await new_page(browser)

    link = await mailed_link(gateway)
    await page.goto(link)
    await shoot(page, "staff-sign-in")
    await follow(page, page.get_by_role("button", name="Sign in"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("The firm's payment requests")
    assert await client_cells(page).count() == 5
    await shoot(page, "staff-requests")

    # The table filtered to unpaid.
    await page.get_by_label("Status").select_option("unpaid")
    await follow(page, page.get_by_role("button", name="Show"))
    await expect(client_cells(page)).to_have_count(1)
    assert await client_cells(page).inner_text() == "jane@client.example"
    assert "status=unpaid" in page.url
    await shoot(page, "staff-requests-unpaid")

    # A request's page, and a remind.
    await follow(page, client_cells(page))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Request to jane@client.example")
    assert "Opened by the client" not in await page.locator("ol.timeline").inner_text()
    await shoot(page, "staff-request")
    await follow(page, page.get_by_role("button", name="Remind the client"))
    await expect(page.get_by_role("status")).to_contain_text("has been sent the request again")
    await expect(page.locator("ol.timeline")).to_contain_text("Reminder sent")
    await shoot(page, "staff-request-reminded")
    await settled()
    assert len(mails_to(gateway, "jane@client.example")) == 2

    # A compose with two files that reaches the client's outbox; a mistake first.
    await follow(page, page.get_by_role("link", name="New request").first)
    await shoot(page, "staff-compose")
    await page.get_by_label("Client's email address").fill("carol@client.example")
    await page.get_by_label("Amount", exact=True).fill("99.999")
    await page.get_by_role("button", name="Send the request").click()
    await expect(page.locator("#amount-errors")).to_contain_text("at most 2 decimals")
    await expect(page.get_by_label("Amount", exact=True)).to_have_attribute("aria-invalid", "true")
    await shoot(page, "staff-compose-errors")
    await page.get_by_label("Amount", exact=True).fill("310.50")
    await page.get_by_label("Subject").fill("Year-end statements")
    await page.get_by_label("Invoice number").fill("2001")
    await page.get_by_label("Password hint (optional)").fill("Your street")
    await page.get_by_label("Files").set_input_files([
        {"name": "invoice-2001.pdf", "mimeType": "application/pdf", "buffer": PDF},
        {"name": "Relevé été.csv", "mimeType": "text/csv", "buffer": CSV},
    ])
    await expect(page.locator("#chosen li")).to_have_count(2)
    await page.get_by_role("button", name="Send the request").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Request to carol@client.example")
    await expect(page.locator("ul.plain-files")).to_contain_text("invoice-2001.pdf")
    await expect(page.locator("ul.plain-files")).to_contain_text("Relevé été.csv")
    await settled()
    [to_carol] = mails_to(gateway, "carol@client.example")
    assert "Year-end statements" in str(to_carol["Subject"])
    assert any(str(m["Subject"]).startswith("Sent: Invoice 2001") for m in mails_to(gateway, ADMIN))

    # An admin's level change.
    await follow(page, page.get_by_role("link", name="People"))
    await shoot(page, "staff-people")
    await page.get_by_label("Level of sam@demo.localhost").select_option("report")
    await follow(page, page.get_by_role("button", name="Change sam@demo.localhost"))
    await expect(page.get_by_role("status")).to_contain_text("sam@demo.localhost now has level report")
    assert (await Staff.get(email="sam@demo.localhost")).level is Level.REPORT

    # A report download.
    await follow(page, page.get_by_role("link", name="Reports"))
    await page.get_by_label("Period").select_option("this-month")
    await follow(page, page.get_by_role("button", name="Show the summary"))
    await expect(page.locator(".summary-table")).to_contain_text("CAD")
    await shoot(page, "staff-reports")
    async with page.expect_download() as started:
        await page.get_by_role("link", name="Download the CSV file").click()
    download = await started.value
    assert re.fullmatch(r"demo\.localhost-csv-\d{4}-\d{2}-\d{2}_\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    saved = tmp_path / "report.csv"
    await download.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert {"1042", "1043", "2001"} <= {row[1] for row in rows[1:]}

    await follow(page, page.get_by_role("link", name="Payments setup"))
    await shoot(page, "staff-payments")
    await follow(page, page.get_by_role("link", name="Français"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Configuration des paiements")
    await follow(page, page.get_by_role("link", name="Demandes").first)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Les demandes de paiement du cabinet")
    await shoot(page, "staff-requests-fr")
    await follow(page, page.get_by_role("button", name="Se déconnecter"))
    await shoot(page, "staff-signed-out")
    assert errors == []


async def test_a_send_level_member_sees_their_own_and_is_refused_the_rest_by_url(gateway, browser):  # noqa: F811
    firm = await Firm.get(domain="demo.localhost")
    await directory.add_staff(firm, "sam@demo.localhost", Level.SEND, now=gateway.deps.clock(), actor="test")
    await send(gateway, request_mail("Invoice 7 $10.00 to=own@client.example pw=Blue42", sender="sam@demo.localhost"))
    await send(gateway, request_mail("Invoice 8 $10.00 to=theirs@client.example pw=Blue42"))
    await settled()
    theirs = await PaymentRequest.get(invoice="8")
    page, errors = await new_page(browser)
    await sign_in(page, await mailed_link(gateway, "sam@demo.localhost"))
    assert [await a.inner_text() for a in await client_cells(page).all()] == ["own@client.example"]
    nav = await page.get_by_role("navigation", name="Dashboard").inner_text()
    assert "People" not in nav and "Reports" not in nav and "Payments setup" not in nav

    base = gateway.deps.settings.public_base_url
    answer = await page.goto(f"{base}/staff/requests/{theirs.id}")
    assert answer.status == 404 and "theirs@client.example" not in await page.content()
    await shoot(page, "staff-not-found")
    for path in ("/staff/people", "/staff/payments", "/staff/reports", f"/staff/requests/{theirs.id}/refund"):
        answer = await page.goto(base + path)
        assert answer.status == 403, path
        await expect(page.get_by_role("heading", level=1)).to_have_text("Not available at your level")
    await shoot(page, "staff-forbidden")
    assert [e for e in errors if "404" not in e and "403" not in e] == []


async def test_a_used_or_expired_link_says_how_to_get_a_new_one(clocked, clock, browser):  # noqa: F811
    gateway = clocked
    link = await mailed_link(gateway)
    page, errors = await new_page(browser)
    await sign_in(page, link)
    other, _ = await new_page(browser)
    answer = await other.goto(link)
    assert answer.status == 410
    text = await other.locator("main").inner_text()
    assert "has been used, has expired" in text and "email the word dashboard" in text
    await expect(other.get_by_role("link", name="Email dashboard to pay@demo.localhost")).to_have_attribute(
        "href", "mailto:pay@demo.localhost?subject=dashboard")
    await shoot(other, "staff-link-used")

    answer = await other.goto(link[:-4] + "AAAA")
    assert answer.status == 404 and "email the word dashboard" in await other.locator("main").inner_text()
    await shoot(other, "staff-link-unknown")
    fresh = await mailed_link(gateway)
    await other.goto(fresh)
    clock.advance(minutes=16)
    await follow(other, other.get_by_role("button", name="Sign in"))
    await expect(other.get_by_role("heading", level=1)).to_have_text("This sign-in link cannot be used")


async def test_keyboard_alone_signs_in_filters_opens_and_cancels(gateway, browser):  # noqa: F811
    await send(gateway, request_mail("Invoice 1042 $125.00 to=jane@client.example pw=Blue42"))
    await settled()
    page, errors = await new_page(browser)
    await page.goto(await mailed_link(gateway))
    await page.keyboard.press("Tab")  # the language switch, then the button
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent.trim()") == "Sign in"
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/staff/$"))

    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent.trim()") == "Skip to the content"
    await page.keyboard.press("Enter")
    focus = await focus_on(page, "select#f-status")
    await page.keyboard.press("ArrowDown")  # "Unpaid"
    await focus_on(page, "button[type=submit]", start_from=focus)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"status=unpaid"))
    await focus_on(page, "td.client a")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Request to jane@client.example")
    await focus_on(page, "a.button[href$='/cancel']")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Cancel the request to jane@client.example?")
    await focus_on(page, "button.danger")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("is cancelled")
    assert (await PaymentRequest.get()).status is RequestStatus.CANCELLED
    assert errors == []


async def focus_on(page: Page, selector: str, start_from: int = 0, most: int = 60) -> int:
    """Press Tab until ``selector`` has the focus (as a person would); how many presses."""
    for presses in range(start_from + 1, most):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"Tab never reached {selector}")


async def test_the_checker_finds_what_it_should(gateway, browser):  # noqa: F811
    page, _ = await new_page(browser)
    await page.goto(await mailed_link(gateway))
    await page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"x.png\">')")
    assert "image-alt" in [v["id"] for v in await axe.violations(page)]
