"""/healthz and robots.txt."""

from __future__ import annotations

import httpx

from tests.web_support import base_url

pytest_plugins = ["tests.web_fixtures"]


async def test_robots_keep_links_out_of_search_engines_and_health_answers(clocked):
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        robots = await http.get("/robots.txt")
        health = await http.get("/healthz")
    assert robots.status_code == 200 and "Disallow: /r/" in robots.text.splitlines()
    assert health.json() == {"status": "ok"}
