"""Paying in a real browser (Debian's Chromium driven by Playwright), from
the client's mail to the thank-you page, against the whole gateway in demo
mode (the sandbox checkout); then the Stripe page's own script, with
Stripe.js replaced by a stand-in served for https://js.stripe.com/v3/ and
Stripe's API by recorded answers.

Screenshots of the pay and thank-you pages at 375 and 1280 px go to
test-output/screenshots/. Without Chromium this fails (never skips).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from gateway.core.models import Firm, PaymentRequest, RequestStatus
from gateway.service import Running, running
from tests.conftest import make_settings, mails_to, request_mail, send, settled
from tests.payments_support import RecordedStripe
from tests.test_browser import (IN_THE_BROWSERS_LOOP, LINK, browser, follow, gateway,  # noqa: F401  (fixtures)
                                new_page, shoot, unlock_with)
from tests.web_support import make_request

pytestmark = IN_THE_BROWSERS_LOOP

CLI = [str(Path(sys.executable).with_name("clienttrack"))]
SUBJECT = "Invoice 7 $100.00 to={client} pw=Blue42 +fee"
RECORDED = Path(__file__).resolve().parent / "data" / "stripe"
ACCOUNT = "acct_1QcT7yPf3kZ2mN8a"


async def mailed_link(gw: Running, client: str) -> str:
    """Send the staff member's mail; return the link in the client's mail."""
    await send(gw, request_mail(SUBJECT.format(client=client)))
    await settled()
    [mail] = mails_to(gw, client)
    [link] = set(LINK.findall(mail.get_body(("plain",)).get_content()))
    return link


async def open_and_go_to_pay(page: Page, link: str) -> None:
    await page.goto(link)
    await unlock_with(page, "Blue42")
    await follow(page, page.get_by_role("link", name="Pay $100.00 CAD"))


async def pay_with(page: Page, card: str) -> None:
    await page.get_by_label("Card number").fill(card)
    await follow(page, page.get_by_role("button", name="Pay (TEST)"))


async def requests_json(gw: Running) -> list[dict]:
    """`clienttrack requests list --json`, the real command in its own process."""
    done = await asyncio.to_thread(
        subprocess.run, [*CLI, "requests", "list", "--json", "--data-dir", str(gw.deps.settings.data_dir),
                         "--database-url", gw.deps.settings.database],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_the_demo_from_the_mail_to_you_paid_102_40(gateway, browser):  # noqa: F811
    link = await mailed_link(gateway, "jane@client.example")
    page, errors = await new_page(browser)
    await open_and_go_to_pay(page, link)

    assert "TEST" in await page.locator(".test-banner").inner_text()
    fees = await page.locator("table.fees").inner_text()
    credit, debit = [await row.inner_text() for row in await page.locator("table.fees tbody tr").all()]
    assert credit.startswith("Credit card") and "$102.40 CAD" in credit and "includes a $2.40 CAD card fee" in credit
    assert debit.startswith("Debit or prepaid card") and "$100.00 CAD" in debit and "no card fee" in debit
    assert "2.4%" in fees
    await shoot(page, "pay-sandbox")

    await pay_with(page, "4000 0000 0000 0002")
    assert await page.get_by_role("alert").inner_text() == "Your card was declined. Try another card."
    assert await page.get_by_label("Card number").input_value() == ""
    # The focused card field scrolled the page: Chromium's full-page capture
    # then leaves part of it blank, so shoot from the top.
    await page.evaluate("window.scrollTo(0, 0)")
    await shoot(page, "pay-declined")
    assert (await PaymentRequest.get()).status is RequestStatus.FAILED

    # The card is a credit card: its total, with the fee, is asked for before anything is charged.
    await pay_with(page, "4242 4242 4242 4242")
    await expect(page.get_by_role("heading", level=2, name="This card: $102.40 CAD")).to_be_visible()
    assert "$100.00 CAD plus a $2.40 CAD card fee" in await page.locator(".confirm-total").inner_text()
    await expect(page.get_by_role("link", name="Use another card")).to_be_visible()
    await shoot(page, "pay-sandbox-confirm")
    await follow(page, page.get_by_role("button", name="Pay $102.40 CAD (TEST)"))
    assert await page.get_by_role("heading", level=1).inner_text() == "You paid $102.40 to Demo Accounting"
    request = await PaymentRequest.get()
    assert f"Reference: R{request.id}" in await page.locator(".reference").inner_text()
    receipt_lines = await page.locator("dl.receipt").inner_text()
    assert "Card fee\n$2.40 CAD" in receipt_lines and "Total paid\n$102.40 CAD" in receipt_lines
    await shoot(page, "paid")

    # Back on the message, it says paid; the pay page now leads to the thanks.
    await follow(page, page.get_by_role("link", name="Back to the message"))
    assert "Paid on" in await page.locator(".notice.ok").inner_text()
    assert await page.get_by_role("link", name=re.compile("^Pay ")).count() == 0
    await page.goto(f"{link}/pay")
    assert await page.get_by_role("heading", level=1).inner_text() == "You paid $102.40 to Demo Accounting"

    await settled()
    [receipt] = [m for m in mails_to(gateway, "jane@client.example") if "Receipt" in str(m["Subject"])]
    assert "$102.40 CAD paid to Demo Accounting" in receipt["Subject"]
    assert receipt["From"] == "Demo Accounting <pay@demo.localhost>"
    receipt_text = " ".join(receipt.get_body(("plain",)).get_content().split())
    assert "Card fee: $2.40 CAD" in receipt_text and "Total paid: $102.40 CAD" in receipt_text
    [notice] = [m for m in mails_to(gateway, "staff@demo.localhost") if "Paid:" in str(m["Subject"])]
    assert "Invoice 7, $102.40 CAD from jane@client.example" in notice["Subject"]

    [listed] = await requests_json(gateway)
    assert (listed["status"], listed["amount"], listed["fee"], listed["total"]) == ("paid", "100.00", "2.40", "102.40")
    assert listed["invoice"] == "7" and listed["paid_at"]
    assert errors == []


async def test_a_debit_card_pays_no_fee_in_the_browser(gateway, browser):  # noqa: F811
    link = await mailed_link(gateway, "bob@client.example")
    page, errors = await new_page(browser)
    await open_and_go_to_pay(page, link)
    await pay_with(page, "4000 0566 5566 5556")
    assert await page.get_by_role("heading", level=1).inner_text() == "You paid $100.00 to Demo Accounting"
    lines = await page.locator("dl.receipt").inner_text()
    assert "Card fee" not in lines and "Total paid\n$100.00 CAD" in lines and "Debit card" in lines
    assert "No card fee on debit cards in Canada." in await page.locator(".thanks").inner_text()
    await shoot(page, "paid-debit")
    [listed] = await requests_json(gateway)
    assert (listed["status"], listed["fee"], listed["total"]) == ("paid", "0.00", "100.00")
    assert errors == []


async def test_the_french_checkout_and_thanks(gateway, browser):  # noqa: F811
    link = await mailed_link(gateway, "claire@client.example")
    page, errors = await new_page(browser)
    await page.goto(link + "?lang=fr")
    await page.get_by_label("Mot de passe").fill("Blue42")
    await follow(page, page.get_by_role("button", name="Ouvrir mon message"))
    await follow(page, page.get_by_role("link", name=re.compile("^Payer ")))
    await page.get_by_label("Province de facturation").select_option("QC")
    await page.get_by_label("Numéro de carte").fill("4242424242424242")
    await follow(page, page.get_by_role("button", name="Payer (TEST)"))
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert heading == "Vous avez payé 100,00\u00a0$ à Demo Accounting"  # billed in Quebec: no fee
    await shoot(page, "paid-fr")
    request = await PaymentRequest.get()
    assert (request.total_minor, request.fee_minor, request.card_funding) == (10000, 0, "credit")
    assert errors == []


# -- the Stripe page's script, with a stand-in for Stripe.js --------------------------------

# Just enough of Stripe.js for our script: the Payment Element mounts, a
# ConfirmationToken comes back, and each call is written down for the test.
FAKE_STRIPE_JS = """
window.stripeCalls = [];
// Each call, also to the test when it listens (the page navigates away at the end).
function note(call) { stripeCalls.push(call); if (window.recordStripeCall) { window.recordStripeCall(call); } }
window.Stripe = function (key, options) {
  note(["Stripe", key, options]);
  return {
    elements: function (options) {
      note(["elements", options]);
      // The amount the Element (and a wallet's sheet) would show now.
      window.elementAmount = options.amount;
      return {
        update: async function (changes) {
          note(["update", changes]);
          if (changes.amount !== undefined) { window.elementAmount = changes.amount; }
        },
        create: function (type, options) {
          var handlers = {};
          return {
            on: function (name, fn) { handlers[name] = fn; },
            mount: function (selector) {
              document.querySelector(selector).textContent = "(Stripe's card fields)";
              setTimeout(function () { handlers.ready && handlers.ready(); }, 0);
            }
          };
        },
        submit: async function () { note(["submit"]); return {}; }
      };
    },
    createConfirmationToken: async function (args) {
      note(["createConfirmationToken", args.params, window.elementAmount]);
      return { confirmationToken: { id: "ctoken_1QcT8xPf3kZ2mN8aDeBiT001" } };
    },
    handleNextAction: async function (args) {
      note(["handleNextAction", args.clientSecret]);
      // 3-D Secure happens here; the test says when the client is done.
      await new Promise(function (done) { window.finishNextAction = done; });
      return {};
    }
  };
};
"""


@pytest_asyncio.fixture(loop_scope="session")
async def striped(tmp_path) -> AsyncIterator[tuple[Running, RecordedStripe]]:
    fake = RecordedStripe(RECORDED)
    async with fake.running() as url:
        settings = make_settings(tmp_path, stripe_secret_key="sk_test_recorded", stripe_api_base=url,
                                 stripe_publishable_key="pk_test_recorded")
        async with running(settings) as gw:
            await Firm.filter(domain="demo.localhost").update(stripe_account_id=ACCOUNT, payments_ready=True)
            fake.answer("POST /v1/payment_intents", "payment_intent_created.json")
            fake.answer("GET /v1/payment_intents/{id}", "payment_intent_created.json")
            fake.answer("GET /v1/confirmation_tokens/{id}", "confirmation_token_debit.json")
            fake.answer("POST /v1/payment_intents/{id}", "payment_intent_created.json")
            yield gw, fake


async def test_the_stripe_page_script_confirms_on_the_server(striped, browser):  # noqa: F811
    gw, fake = striped
    made = await make_request(gw.deps)
    await PaymentRequest.filter(id=made.request.id).update(amount_minor=10000, pass_fee=True)
    page, errors = await new_page(browser)
    await page.route("https://js.stripe.com/v3/", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=FAKE_STRIPE_JS))
    base = gw.deps.settings.public_base_url
    await page.goto(base + made.path)
    await unlock_with(page, "Blue42")
    await page.goto(f"{base}{made.path}/pay")
    button = page.get_by_role("button", name="Pay", exact=True)
    await button.wait_for()
    assert await button.is_enabled()  # the Payment Element said "ready"
    await shoot(page, "pay-stripe")

    # A decline: the message shows, the button comes back.
    fake.answer("POST /v1/payment_intents/{id}/confirm", "card_declined.json", status=402)
    fake.answer("GET /v1/payment_intents/{id}", "payment_intent_declined.json")
    await button.click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert await alert.inner_text() == "Your card was declined."
    assert await button.is_enabled()

    fake.answer("POST /v1/payment_intents/{id}/confirm", "payment_intent_succeeded_debit.json")
    fake.answer("GET /v1/payment_intents/{id}", "payment_intent_declined.json")
    await button.click()
    await page.wait_for_url(f"**{made.path}/paid")
    assert await page.get_by_role("heading", level=1).inner_text() == "You paid $100.00 to Demo Accounting"

    [first, second] = fake.calls_to("POST", "/v1/payment_intents/{id}/confirm")
    assert second.form["confirmation_token"] == "ctoken_1QcT8xPf3kZ2mN8aDeBiT001" and second.account == ACCOUNT
    assert (await PaymentRequest.get(id=made.request.id)).status is RequestStatus.PAID
    assert errors == []


async def test_the_stripe_script_takes_the_next_action_then_goes_to_the_thanks(striped, browser):  # noqa: F811
    gw, fake = striped
    made = await make_request(gw.deps)
    page, errors = await new_page(browser)
    await page.route("https://js.stripe.com/v3/", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=FAKE_STRIPE_JS))
    base = gw.deps.settings.public_base_url
    await page.goto(base + made.path)
    await unlock_with(page, "Blue42")
    await page.goto(f"{base}{made.path}/pay")
    init = await page.evaluate("window.stripeCalls")
    assert init[0] == ["Stripe", "pk_test_recorded", {"locale": "en", "stripeAccount": ACCOUNT}]
    assert init[1][1]["mode"] == "payment" and init[1][1]["amount"] == 125000 and init[1][1]["currency"] == "cad"

    action = json.loads((RECORDED / "payment_intent_created.json").read_text())
    action["status"] = "requires_action"
    fake.answer("POST /v1/payment_intents/{id}/confirm", action)
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.wait_for_function("() => typeof window.finishNextAction === 'function'")
    assert (await page.evaluate("window.stripeCalls"))[-1] == ["handleNextAction", action["client_secret"]]
    assert await page.get_by_role("button", name="Paying…").is_disabled()
    # The bank has the payment now, and no webhook has come yet.
    fake.answer("GET /v1/payment_intents/{id}", {**action, "status": "processing"})
    await page.evaluate("window.finishNextAction()")
    await page.wait_for_url(f"**{made.path}/paid")
    assert await page.get_by_role("heading", level=1).inner_text() == "Your payment is being processed"
    await shoot(page, "paid-processing")
    [update] = fake.calls_to("POST", "/v1/payment_intents/{id}")
    assert update.form["amount"] == "125000"  # a debit card, and the firm pays its fee (no +fee)
    assert errors == []


async def test_a_credit_card_with_fee_the_element_and_the_payment_intent_say_the_same_amount(striped, browser):  # noqa: F811
    gw, fake = striped
    made = await make_request(gw.deps)
    await PaymentRequest.filter(id=made.request.id).update(amount_minor=10000, pass_fee=True)
    token = fake.load("confirmation_token_debit.json")
    token["payment_method_preview"]["card"]["funding"] = "credit"  # a credit card billed in Ontario
    fake.answer("GET /v1/confirmation_tokens/{id}", token)
    paid = fake.load("payment_intent_succeeded_debit.json")
    paid["amount"] = paid["amount_received"] = paid["latest_charge"]["amount"] = 10240
    paid["latest_charge"]["payment_method_details"]["card"]["funding"] = "credit"
    paid["metadata"] = {**paid.get("metadata", {}), "province": ""}
    fake.answer("POST /v1/payment_intents/{id}/confirm", paid)
    page, errors = await new_page(browser)
    calls: list = []
    await page.expose_function("recordStripeCall", lambda call: calls.append(call))
    await page.route("https://js.stripe.com/v3/", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=FAKE_STRIPE_JS))
    base = gw.deps.settings.public_base_url
    await page.goto(base + made.path)
    await unlock_with(page, "Blue42")
    await page.goto(f"{base}{made.path}/pay")
    assert await page.evaluate("window.elementAmount") == 10000  # the Element starts at the invoice amount

    await page.get_by_role("button", name="Pay", exact=True).click()
    # The server read the card: $102.40 for it. Nothing is charged until the client says so.
    await page.get_by_role("heading", name="This card: $102.40 CAD").wait_for()
    assert "$100.00 CAD plus a $2.40 CAD card fee" in await page.locator("#card-total").inner_text()
    assert fake.calls_to("POST", "/v1/payment_intents/{id}/confirm") == []
    await shoot(page, "pay-stripe-confirm")
    # "Use another card" puts the Element back; then the same card, approved.
    await page.get_by_role("button", name="Use another card").click()
    assert await page.evaluate("window.elementAmount") == 10000
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.get_by_role("button", name="Pay $102.40 CAD").click()
    await page.wait_for_url(f"**{made.path}/paid")
    assert await page.get_by_role("heading", level=1).inner_text() == "You paid $102.40 to Demo Accounting"

    tokens = [call for call in calls if call[0] == "createConfirmationToken"]
    assert [amount for _, _, amount in tokens] == [10000, 10000, 10240]  # the last one made at the new total
    assert [call[1] for call in calls if call[0] == "update"] == [{"amount": 10000}, {"amount": 10240}]
    [update] = fake.calls_to("POST", "/v1/payment_intents/{id}")
    [confirm] = fake.calls_to("POST", "/v1/payment_intents/{id}/confirm")
    # The same amount in the Element, on the PaymentIntent and in what Stripe confirms.
    assert update.form["amount"] == confirm.form["amount_to_confirm"] == "10240"
    stored = await PaymentRequest.get(id=made.request.id)
    assert (stored.status, stored.total_minor, stored.fee_minor) == (RequestStatus.PAID, 10240, 240)
    assert errors == []
