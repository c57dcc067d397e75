"""The compose form over real HTTP, against the whole gateway: a request
made from it goes through the inbound queue, runner, rules and handler like
a mailed one (the client's mail, the member's confirmation); its mistakes
are the directive grammar's, shown beside the fields; the gateway's size
and hourly limits hold."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from gateway.core.models import Event, InboundMessage, PaymentRequest, SealedFile
from gateway.mail import directives
from gateway.service import Running, running
from tests.conftest import make_settings, mails_to, settled
from tests.staff_support import ADMIN, signed_in
from tests.test_flow import only_link
from tests.web_support import csrf_token, submit

pytest_plugins = ["tests.web_fixtures"]

PDF = b"%PDF-1.4\n" + b"0" * 4000 + b"\n%%EOF\n"
CSV = "date,amount\n2026-03-01,1250.00\nRelevé,été\n".encode()
FIELDS = {"client": "jane@client.example", "subject": "March bookkeeping", "amount": "1250.00", "currency": "CAD",
          "invoice": "1042", "fee": "yes", "password_choice": "generate", "hint": "", "message": "Hello Jane,\nthe files.",
          "expires_days": "14"}


async def compose(http: httpx.AsyncClient, fields: dict, files=()) -> httpx.Response:
    page = await http.get("/staff/compose")
    assert page.status_code == 200
    return await http.post("/staff/compose", data={"csrf_token": csrf_token(page), **fields},
                           files=[("files", f) for f in files] or None)


def errors_of(page: httpx.Response, field: str) -> list[str]:
    found = re.search(rf'<ul class="field-errors" id="{field}-errors">(.*?)</ul>', page.text, re.S)
    return [html.unescape(m) for m in re.findall(r"<li>(.*?)</li>", found.group(1))] if found else []


async def test_a_composed_request_with_two_files_reaches_the_client_like_a_mailed_one(clocked):
    async with signed_in(clocked) as http:
        done = await compose(http, FIELDS, [("invoice-1042.pdf", PDF, "application/pdf"),
                                            ("Relevé été.csv", CSV, "text/csv")])
        assert done.status_code == 303, done.text
        made = await PaymentRequest.get()
        assert done.headers["location"] == f"/staff/requests/{made.id}"
        page = await http.get(done.headers["location"])
        text = html.unescape(page.text)
        assert "Sent to jane@client.example" in text and "invoice-1042.pdf" in text and "Relevé été.csv" in text
    assert (made.invoice, made.amount_minor, made.currency, made.pass_fee, made.title) == (
        "1042", 125000, "CAD", True, "March bookkeeping")
    assert (made.expires_at - made.created_at).days == 14
    files = await SealedFile.filter(request=made, is_body=False).order_by("position")
    assert [(f.filename, f.size) for f in files] == [("invoice-1042.pdf", len(PDF)), ("Relevé été.csv", len(CSV))]
    queued = await InboundMessage.get()
    assert (queued.sender, queued.firm_domain, queued.outcome) == (ADMIN, "demo.localhost", f"request R{made.id}")
    assert queued.peer.startswith("dashboard ")

    await settled()
    [client_mail] = mails_to(clocked, "jane@client.example")
    assert "March bookkeeping" in str(client_mail["Subject"])
    [confirmation] = [m for m in mails_to(clocked, ADMIN) if str(m["Subject"]).startswith("Sent:")]
    body = confirmation.get_body(("plain",)).get_content()
    password = re.search(r"\b([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})\b", body).group(1)
    assert "invoice-1042.pdf" in body
    async with httpx.AsyncClient() as client:
        opened = await submit(client, only_link(client_mail), password)
        assert opened.status_code == 303
        message = await client.get(only_link(client_mail))
        assert "the files." in message.text and "Relevé été.csv" in html.unescape(message.text)
    assert await Event.filter(action="request.created").count() == 1


async def test_the_members_own_password_opens_it(clocked):
    async with signed_in(clocked) as http:
        done = await compose(http, {**FIELDS, "password_choice": "own", "password": "  two words ",
                                    "hint": '"quoted" hint'})
        assert done.status_code == 303
    made = await PaymentRequest.get()
    assert made.hint == '"quoted" hint'
    await settled()
    [client_mail] = mails_to(clocked, "jane@client.example")
    async with httpx.AsyncClient() as client:
        assert (await submit(client, only_link(client_mail), "two words")).status_code == 303


@pytest.mark.parametrize("change, field, words", [
    ({"client": ""}, "client", "There is no client address"),
    ({"client": "jane@"}, "client", "is not a complete email address"),
    ({"amount": "12.345"}, "amount", "at most 2 decimals"),
    ({"amount": ""}, "amount", "There is no amount"),
    ({"currency": "XYZ"}, "currency", "not a currency this gateway knows"),
    ({"invoice": "10 42"}, "invoice", "one word of letters, digits"),
    ({"password_choice": "own", "password": "Blue42", "hint": "blue42 is it"}, "hint", "gives the password away"),
    ({"password_choice": "own", "password": ""}, "password", "There is no password"),
    ({"password_choice": "own", "password": "   "}, "password", "The password is empty"),
    ({"subject": "Invoice 7 for March"}, "invoice", "two different invoice numbers"),
    ({"subject": "Status of your account"}, "subject", "read as that command"),
    ({"subject": "x=1 hello"}, "subject", "x= is not a directive"),
    ({"expires_on": "2020-01-01"}, "expires", "is in the past"),
])
async def test_mistakes_are_the_grammars_own_shown_beside_their_field_and_nothing_is_sent(clocked, change, field, words):
    async with signed_in(clocked) as http:
        page = await compose(http, {**FIELDS, **change})
    assert page.status_code == 400
    shown = errors_of(page, field)
    assert any(words in message for message in shown), (shown, page.text[-3000:])
    assert 'aria-invalid="true"' in page.text and "Nothing was sent" in page.text
    assert await InboundMessage.all().count() == 0 and await PaymentRequest.all().count() == 0


async def test_the_messages_are_word_for_word_what_a_mail_gets(clocked):
    async with signed_in(clocked) as http:
        page = await compose(http, {**FIELDS, "amount": "-5"})
    with pytest.raises(directives.DirectivesRejected) as by_mail:
        directives.parse_request("x", "Amount: -5\nTo: jane@client.example\nPw: auto", firm_currency="CAD",
                                 limit_minor=None, default_fee=False, now=clocked.deps.clock())
    assert errors_of(page, "amount") == [by_mail.value.errors[0].message]


async def test_a_form_without_its_csrf_token_is_refused(clocked):
    async with signed_in(clocked) as http:
        refused = await http.post("/staff/compose", data={**FIELDS, "csrf_token": "forged"})
        assert refused.status_code == 403
    assert await InboundMessage.all().count() == 0


@pytest.fixture
async def small(tmp_path: Path, clock) -> AsyncIterator[Running]:
    """A gateway that takes 64 KB messages and one message an hour from each sender."""
    settings = make_settings(tmp_path, max_message_size=64 * 1024, sender_hourly_limit=1)
    async with running(settings, clock=clock) as gw:
        yield gw


async def test_the_gateways_size_limit_holds_as_by_mail(small):
    async with signed_in(small) as http:
        # 50 KB of files is under the limit, but not once encoded for mail (base64).
        page = await compose(http, FIELDS, [("big.pdf", b"x" * 50_000, "application/pdf")])
        assert page.status_code == 400
        [message] = errors_of(page, "files")
        assert "over the gateway's limit of 66 KB" in message and "about 49 KB" in message
        huge = await compose(http, FIELDS, [("huge.pdf", b"x" * 200_000, "application/pdf")])
        assert huge.status_code == 413 and "The files are too large" in html.unescape(huge.text)
    assert await InboundMessage.all().count() == 0


async def test_the_hourly_limit_holds_as_by_mail(small):
    async with signed_in(small) as http:
        assert (await compose(http, FIELDS)).status_code == 303
        again = await compose(http, FIELDS)
        assert again.status_code == 429 and "as many messages as the gateway takes in an hour" in again.text
    assert await PaymentRequest.all().count() == 1
