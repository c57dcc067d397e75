"""The client's side in a real browser: Debian's Chromium driven by
Playwright, against the whole gateway, starting from the mail in the outbox.

Screenshots of every page at phone (375 px) and desktop (1280 px) width go
to test-output/screenshots/, each page checked by axe-core first (WCAG 2.2
AA, tests/axe.py). Without Chromium this fails (never skips):
.ci/run installs it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, expect

from gateway.core.models import PaymentRequest, RequestStatus, UnlockGuard
from gateway.service import Running, running
from tests import axe
from tests.conftest import mails_to, make_settings, request_mail, send, settled

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
LINK = re.compile(r"https?://[^\s\"<>]+/r/[A-Za-z0-9_-]{43}")
SUBJECT = 'Invoice 1042 $1,250.00 to={client} pw=Blue42 hint="First pet" +fee'
PDF = b"%PDF-1.4\n" + hashlib.sha256(b"invoice").digest() * 8000 + b"\n%%EOF\n"  # 256 KB: several chunks
CSV = "date,amount\n2026-03-01,1250.00\nRelevé,été\n".encode()
BODY = "Hello Jane,\n\nYour invoice for March is attached, with the statement.\n<script>alert(1)</script>\n\nThanks,\nSam"
WIDTHS = {"phone": 375, "desktop": 1280}


# The browser tests (here and in tests/test_browser_*.py) share the worker's
# Chromium (conftest.py's chromium), so they run in the session's event loop,
# and so do the gateways they start (the fixtures below: the same as
# conftest.py's and web_fixtures.py's, in that loop). Each of those modules
# sets pytestmark = IN_THE_BROWSERS_LOOP.
IN_THE_BROWSERS_LOOP = pytest.mark.asyncio(loop_scope="session")
pytestmark = IN_THE_BROWSERS_LOOP


@pytest_asyncio.fixture(loop_scope="session")
async def browser(chromium: Browser) -> AsyncIterator[Browser]:
    """The worker's Chromium; what the test opened in it (new_page's
    contexts: cookies, storage, pages) is closed when the test ends."""
    yield chromium
    for context in chromium.contexts:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(tmp_path: Path) -> AsyncIterator[Running]:
    async with running(make_settings(tmp_path)) as gw:
        yield gw


async def shoot(page: Page, name: str) -> None:
    """The page as it is, at each width, after axe-core finds nothing wrong
    with it at either (WCAG 2.2 A and AA: tests/axe.py)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 800})
        await axe.check(page, f"{name} at {width} px")
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size({"width": WIDTHS["phone"], "height": 800})


async def client_link(gateway, client: str, attachments=()) -> str:
    await send(gateway, request_mail(SUBJECT.format(client=client), body=BODY, attachments=list(attachments)))
    await settled()
    [mail] = mails_to(gateway, client)
    [link] = set(LINK.findall(mail.get_body(("plain",)).get_content()))
    return link


async def new_page(browser: Browser) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport={"width": WIDTHS["phone"], "height": 800}, locale="en-CA")
    page = await context.new_page()
    # Console errors include Content-Security-Policy violations. A 4xx page
    # (wrong password, not found) is logged too: that one is expected.
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error"
            and not message.text.startswith("Failed to load resource: the server responded with a status of 4")
            else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


async def follow(page: Page, target: Locator) -> None:
    """Click what leads to another page, and return once that page has loaded.

    A click returns before the browser has begun the navigation it causes, so
    waiting for the load state alone can return at once, on the page before,
    and what the test reads next may be read from the old page. Waiting for the
    main frame to commit the new document first closes that gap."""
    async with page.expect_event("framenavigated", lambda frame: frame == page.main_frame):
        await target.click()
    await page.wait_for_load_state()


async def unlock_with(page: Page, password: str) -> None:
    await page.get_by_label("Password").fill(password)
    await follow(page, page.get_by_role("button", name="Open my message"))


async def download_each(page: Page, files: dict[str, tuple[str, bytes]], folder: Path) -> None:
    """Each file's link on the page downloads it under its name, byte for byte."""
    for name, (_, data) in files.items():
        async with page.expect_download() as started:
            await page.get_by_role("link", name=name, exact=True).click()
        download = await started.value
        assert download.suggested_filename == name
        saved = folder / f"download-{len(name)}"
        await download.save_as(saved)
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest(), name


async def test_a_client_opens_reads_and_downloads_from_the_mailed_link(gateway, browser, tmp_path):
    files = {"invoice-1042.pdf": ("application/pdf", PDF), "Relevé été.csv": ("text/csv", CSV)}
    link = await client_link(gateway, "jane@client.example",
                             [(name, kind, data) for name, (kind, data) in files.items()])
    page, errors = await new_page(browser)

    await page.goto(link)
    assert await page.get_by_role("heading", level=1).inner_text() == "You have a secure payment request"
    summary = await page.locator("dl.summary").inner_text()
    assert "Demo Accounting" in summary and "1042" in summary and "$1,250.00 CAD" in summary
    assert "Hint: First pet" in await page.locator(".hint").inner_text()
    await shoot(page, "unlock")

    await unlock_with(page, "blue42")
    notice = await page.get_by_role("alert").inner_text()
    assert "not right" in notice and "4 more tries" in notice
    await shoot(page, "unlock-wrong-password")

    await unlock_with(page, "Blue42")
    assert await page.get_by_role("heading", level=1).inner_text() == "Your message from Demo Accounting"
    message = await page.locator(".message").inner_text()
    assert "Your invoice for March is attached, with the statement.\n<script>alert(1)</script>" in message
    pay = page.get_by_role("link", name=re.compile("^Pay "))
    assert await pay.get_attribute("href") == urlsplit(link).path + "/pay"
    await shoot(page, "message")

    await download_each(page, files, tmp_path)

    await follow(page, pay)
    await shoot(page, "pay")
    await follow(page, page.get_by_role("link", name="Back to the message"))
    await follow(page, page.get_by_role("link", name="Français"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Votre message de Demo Accounting")
    await shoot(page, "message-fr")
    await follow(page, page.get_by_role("button", name="Verrouiller ce message"))
    await expect(page.get_by_label("Mot de passe")).to_be_visible()
    await shoot(page, "unlock-fr")

    assert (await PaymentRequest.get()).status is RequestStatus.VIEWED
    assert errors == []


async def test_five_wrong_passwords_lock_the_message_and_a_sixth_is_refused(gateway, browser):
    link = await client_link(gateway, "bob@client.example")
    page, errors = await new_page(browser)
    await page.goto(link)
    for left in (4, 3, 2, 1):
        await unlock_with(page, f"guess{left}")
        assert f"{left} more tr" in await page.get_by_role("alert").inner_text()
    await unlock_with(page, "guess0")
    notice = await page.get_by_role("alert").inner_text()
    assert "locked" in notice and "15 minutes" in notice and "contact Demo Accounting" in notice
    await shoot(page, "unlock-locked")

    await unlock_with(page, "guess-again")
    assert "locked" in await page.get_by_role("alert").inner_text()
    await unlock_with(page, "Blue42")  # right, but still locked
    assert "locked" in await page.get_by_role("alert").inner_text()
    guard = await UnlockGuard.get()
    assert (guard.failures, guard.window_tries, guard.locks) == (5, 5, 1)
    assert errors == []


async def test_unknown_cancelled_and_expired_links_say_what_to_do(gateway, browser):
    link = await client_link(gateway, "carol@client.example")
    page, errors = await new_page(browser)
    response = await page.goto(link[:-4] + "AAAA")
    assert response.status == 404
    assert "contact the firm" in await page.locator("main").inner_text()
    await shoot(page, "not-found")

    await PaymentRequest.filter(client_email="carol@client.example").update(status=RequestStatus.CANCELLED)
    response = await page.goto(link)
    assert response.status == 410
    text = await page.locator("main").inner_text()
    assert "Demo Accounting cancelled this request" in text and "staff@demo.localhost" in text
    await shoot(page, "gone")
    assert errors == []
