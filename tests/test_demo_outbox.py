"""/demo/outbox and /healthz, read in a browser-like client."""

from __future__ import annotations

import re

import httpx

from gateway.service import running
from tests.conftest import make_settings, request_mail, send, settled


async def test_demo_outbox_shows_each_mail_with_clickable_links(gateway):
    await send(gateway, request_mail('Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint="<b>pet</b>"'))
    await settled()
    base = gateway.deps.settings.public_base_url
    async with httpx.AsyncClient(base_url=base) as http:
        listing = await http.get("/demo/outbox")
        assert listing.status_code == 200
        pages = re.findall(r'href="(/demo/outbox/[^"]+\.eml)"', listing.text)
        assert len(pages) == 2  # the client's mail and the confirmation
        bodies = [(await http.get(page)).text for page in pages]
        client_page = next(b for b in bodies if "jane@client.example" in b and "View your email" in b)
        link = re.search(r'<a href="(http://[^"]+/r/[^"]+)">', client_page).group(1)
        assert (await http.get(link)).status_code == 200
        assert "<b>pet</b>" not in client_page and "&lt;b&gt;pet&lt;/b&gt;" in client_page
        html = await http.get(pages[0] + "/html")
        assert html.status_code == 200 and "script-src" not in html.headers["content-security-policy"]
        assert (await http.get("/demo/outbox/..%2Fmaster.key")).status_code == 404


async def test_demo_pages_exist_only_in_demo_mode(tmp_path):
    async with running(make_settings(tmp_path, demo=False)) as gw:
        async with httpx.AsyncClient(base_url=gw.deps.settings.public_base_url) as http:
            assert (await http.get("/demo/outbox")).status_code == 404
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
