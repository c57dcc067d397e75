"""Client replies and uploads, over the real gateway: SMTP in, the client's
pages over HTTP, the staff member's notice in the outbox and the page it
links to. The reply is sealed under the request's key: the staff member
reads it with the request's password, and not without."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from gateway.core.models import ClientReply, Event, PaymentRequest, SealedChunk, SealedFile
from gateway.service import Running, running
from gateway.vault import sealed
from tests.conftest import DEMO_STAFF, mails_to, make_settings, request_mail, send, settled
from tests.test_flow import only_link
from tests.web_support import CSRF, csrf_token

SECURE = "secure@demo.localhost"
STAFF_LINK = re.compile(r"https?://[^\s\"<>]+/staff/replies/[A-Za-z0-9_-]{43}")
SLIP = b"%PDF-1.4\n" + hashlib.sha256(b"t4 slip").digest() * 3000 + b"\n%%EOF\n"  # ~96 KB: two chunks
SECRET_TEXT = "My SIN is on page 2, call me at 555-0142"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Running]:
    # A small reply limit, so "too large" is quick to reach.
    async with running(make_settings(tmp_path, reply_max_size=200_000)) as gw:
        yield gw


async def secure_request(gw: Running, subject: str) -> str:
    """Send a secure message; the link in the client's mail."""
    message = request_mail(subject, body="Hello Jane,\nplease send what is listed.\n")
    del message["To"]
    message["To"] = SECURE
    await send(gw, message, rcpt=SECURE)
    await settled()
    [mail] = mails_to(gw, "jane@client.example")[-1:]
    return only_link(mail)


async def unlocked(http: httpx.AsyncClient, link: str, password: str = "Blue42") -> httpx.Response:
    page = await http.get(link)
    opened = await http.post(link, data={"password": password, "csrf_token": csrf_token(page)})
    assert opened.status_code == 303
    return await http.get(link)


def reply_token(page: httpx.Response) -> str:
    form = page.text[page.text.index('action="/r/'):]
    return CSRF.search(form)[1]


async def reply(http: httpx.AsyncClient, link: str, page: httpx.Response, *, text: str = "",
                files: list[tuple[str, bytes, str]] = (), item: str | None = None) -> httpx.Response:
    data = {"csrf_token": reply_token(page), "message": text}
    if item is not None:
        data["item"] = item
    upload = [("files", (name, content, kind)) for name, content, kind in files] or \
        [("files", ("", b"", "application/octet-stream"))]
    return await http.post(link + "/reply", data=data, files=upload, follow_redirects=True)


async def test_a_client_replies_with_a_file_and_the_staff_member_reads_it_with_the_password_only(gateway):
    link = await secure_request(gateway, 'Your return to=jane@client.example pw=Blue42 hint=Sky')
    async with httpx.AsyncClient() as client:
        page = await unlocked(client, link)
        assert 'enctype="multipart/form-data"' in page.text and 'type="file"' in page.text
        sent = await reply(client, link, page, text=SECRET_TEXT, files=[("T4 slip 2025.pdf", SLIP, "application/pdf")])
        assert sent.status_code == 200 and "Your reply was sent securely to Demo Accounting." in sent.text
        assert "T4 slip 2025.pdf" in sent.text and SECRET_TEXT in sent.text  # the client sees what they sent

    # Sealed, in the blob store like the staff's files: neither the text nor
    # the file is in clear there or in the database.
    request = await PaymentRequest.get()
    settings = gateway.deps.settings
    kept = [p.read_bytes() for p in settings.blobs_dir.rglob("*") if p.is_file()]
    assert len(kept) == 3 and await SealedChunk.all().count() == 0  # the message, the reply's text, its file
    kept += [p.read_bytes() for p in settings.data_dir.glob("clienttrack.db*")]  # (on SQLite)
    assert not any(SLIP[1000:1100] in data or SECRET_TEXT.encode() in data for data in kept)
    [stored] = await SealedFile.filter(request=request, reply_id__isnull=False, is_body=False)
    assert stored.blob and await sealed.read_all(stored, sealed.unlock(request, "Blue42"), gateway.deps.blobs) == SLIP

    # The notice says a reply came and links to it: nothing of the reply itself.
    await settled()
    [notice] = [m for m in mails_to(gateway, DEMO_STAFF) if "Secure reply" in str(m["Subject"])]
    said = notice.get_body(("plain",)).get_content()
    assert "jane@client.example sent you a secure reply to R1" in " ".join(said.split())
    assert SECRET_TEXT not in notice.as_string() and "T4 slip" not in notice.as_string()
    assert not list(notice.iter_attachments())
    [staff_link] = set(STAFF_LINK.findall(said))

    async with httpx.AsyncClient() as staff:
        form = await staff.get(staff_link)
        assert form.status_code == 200 and 'name="password"' in form.text and SECRET_TEXT not in form.text
        file_url = staff_link + f"/files/{stored.position}"
        assert (await staff.get(file_url)).status_code == 303  # not without the password
        wrong = await staff.post(staff_link, data={"password": "blue42", "csrf_token": csrf_token(form)})
        assert wrong.status_code == 403 and SECRET_TEXT not in wrong.text and "not right" in wrong.text
        right = await staff.post(staff_link, data={"password": "Blue42", "csrf_token": csrf_token(wrong)})
        assert right.status_code == 303
        read = await staff.get(staff_link)
        assert SECRET_TEXT in read.text and "T4 slip 2025.pdf" in read.text
        download = await staff.get(file_url)
        assert download.status_code == 200 and download.content == SLIP
        assert download.headers["content-type"] == "application/pdf"
        assert "attachment" in download.headers["content-disposition"]

    # Every reply is an event, and status shows it.
    assert await Event.filter(action="request.replied").count() == 1
    assert await Event.filter(action="request.reply_read", actor=DEMO_STAFF).count() == 1
    await send(gateway, request_mail("status R1"))
    await settled()
    status = mails_to(gateway, DEMO_STAFF)[-1].get_body(("plain",)).get_content()
    assert re.search(r"replied\s+jane@client.example", status) and "reply_read" in status


async def test_upload_shows_the_checklist_and_ticks_a_line_when_its_file_arrives(gateway):
    link = await secure_request(gateway, 'Documents for 2025 to=jane@client.example pw=Blue42 hint=Sky '
                                         'upload="T4 slips, signed engagement letter"')
    request = await PaymentRequest.get()
    assert request.upload_items == ["T4 slips", "signed engagement letter"]
    [mail] = mails_to(gateway, "jane@client.example")
    text = " ".join(mail.get_body(("plain",)).get_content().split())
    assert "Demo Accounting asks you for these documents: - T4 slips - signed engagement letter" in text

    async with httpx.AsyncClient() as client:
        page = await unlocked(client, link)
        start = page.text.index('class="checklist"')
        checklist = page.text[start:page.text.index("</ul>", start)]
        assert checklist.count('class="waiting"') == 2 and "T4 slips" in checklist
        # The file field answers the first line still waiting unless the client picks another.
        assert re.search(r'<option value="0" selected>T4 slips', page.text)
        sent = await reply(client, link, page, files=[("t4.pdf", SLIP, "application/pdf")])
        checklist = sent.text[sent.text.index('class="checklist"'):]
        assert re.search(r'class="received">\s*<span class="mark" aria-hidden="true">✓</span>\s*'
                         r'<span class="label">T4 slips</span>\s*<span class="state">Received', checklist)
        assert re.search(r'class="waiting">\s*<span class="mark" aria-hidden="true">○</span>\s*'
                         r'<span class="label">signed engagement letter', checklist)
        assert re.search(r'<option value="1" selected>signed engagement letter', sent.text)

    await send(gateway, request_mail("status R1"))
    await settled()
    status = " ".join(mails_to(gateway, DEMO_STAFF)[-1].get_body(("plain",)).get_content().split())
    assert "Documents: T4 slips (received), signed engagement letter (waiting)." in status


async def test_what_cannot_be_taken_is_named_and_nothing_is_kept(gateway):
    link = await secure_request(gateway, 'Return to=jane@client.example pw=Blue42 hint=Sky')
    async with httpx.AsyncClient() as client:
        page = await unlocked(client, link)
        bad = await reply(client, link, page, text="Here you go",
                          files=[("setup.exe", b"MZ\x90\x00", "application/pdf"), ("ok.pdf", SLIP, "application/pdf")])
        assert bad.status_code == 400 and "setup.exe cannot be sent" in bad.text and "Nothing was sent" in bad.text
        assert ">Here you go</textarea>" in bad.text  # the text as typed
        big = await reply(client, link, page, files=[("big.pdf", b"%PDF" + b"0" * 250_000, "application/pdf")])
        assert big.status_code == 413 and "the most one reply can carry" in big.text
        empty = await reply(client, link, page)
        assert empty.status_code == 400 and "Write a message or choose a file" in empty.text
        forged = await client.post(link + "/reply", data={"csrf_token": "x" * 43, "message": "hi"},
                                   files=[("files", ("a.pdf", SLIP, "application/pdf"))])
        assert forged.status_code == 403
        path = await client.post(link + "/reply", data={"csrf_token": reply_token(page), "message": ""},
                                 files=[("files", ("../../etc/passwd.txt", b"root:x", "text/plain"))])
        assert path.status_code == 303
    assert await ClientReply.all().count() == 1
    [named] = await SealedFile.filter(reply_id__isnull=False, is_body=False)
    assert named.filename == "passwd.txt" and named.content_type == "text/plain"
    await settled()
    assert len([m for m in mails_to(gateway, DEMO_STAFF) if "Secure reply" in str(m["Subject"])]) == 1


async def test_a_request_that_asks_for_nothing_takes_no_reply(gateway):
    await send(gateway, request_mail("Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42"))
    await settled()
    [mail] = mails_to(gateway, "jane@client.example")
    link = only_link(mail)
    async with httpx.AsyncClient() as client:
        page = await unlocked(client, link)
        assert 'action="/r/' + link.rsplit("/", 1)[1] + '/reply"' not in page.text
        refused = await client.post(link + "/reply", data={"message": "hi"},
                                    files=[("files", ("a.pdf", SLIP, "application/pdf"))])
        assert refused.status_code == 404
    assert await ClientReply.all().count() == 0


async def test_the_dashboard_shows_a_message_and_its_reply_in_the_timeline_never_its_files(gateway):
    from tests.staff_support import signed_in

    link = await secure_request(gateway, 'Your return to=jane@client.example pw=Blue42 hint=Sky')
    async with httpx.AsyncClient() as client:
        page = await unlocked(client, link)
        await reply(client, link, page, text=SECRET_TEXT, files=[("T4 slip 2025.pdf", SLIP, "application/pdf")])
    async with signed_in(gateway) as http:
        table = await http.get("/staff/")
        assert re.search(r'class="num">Secure message <span class="currency"></span>', table.text)
        request = await http.get("/staff/requests/1")
        assert "Secure message" in request.text and "$0.00" not in request.text
        assert "The client replied (sealed)" in request.text
        assert "T4 slip 2025.pdf" not in request.text and SECRET_TEXT not in request.text
