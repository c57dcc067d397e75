"""The access log: one line per request, never a link token."""

from __future__ import annotations

import logging

import httpx

from tests.web_support import PASSWORD, base_url, make_request, submit
from web.accesslog import redact

pytest_plugins = ["tests.web_fixtures"]


def test_tokens_are_redacted_wherever_they_stand():
    token = "k3J9_xYz-0123456789abcdefghijABCDEFGHIJ01234"
    assert redact(f"/r/{token}") == "/r/<redacted>"
    assert redact(f"/r/{token}/files/2") == "/r/<redacted>/files/2"
    assert redact(f"/elsewhere/{token}") == "/elsewhere/<redacted>"
    assert redact("/staff/replies/short-or-cut/files/3") == "/staff/replies/<redacted>/files/3"
    assert redact("/static/style.css") == "/static/style.css"
    assert redact("/demo/outbox/1764000000.M1P2Q3.host.eml") == "/demo/outbox/1764000000.M1P2Q3.host.eml"


async def test_a_whole_visit_logs_method_path_status_and_time_but_no_token(clocked, caplog):
    caplog.set_level(logging.DEBUG)
    made = await make_request(clocked.deps, files=[("a.pdf", "application/pdf", b"%PDF-1.4")])
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        await submit(http, made.path + "?lang=fr", "wrong")
        await submit(http, made.path, PASSWORD)
        await http.get(made.path)
        await http.get(f"{made.path}/files/1")
        await http.get("/r/" + made.token[:20])
    # uvicorn's access log is off: it neither propagates nor has a handler
    # of its own. pytest attaches its capture to such loggers anyway, which
    # turns uvicorn's on here alone, so its lines are left out below, with
    # those of the test's own HTTP client.
    assert logging.getLogger("uvicorn.access").propagate is False
    records = [r for r in caplog.records if not r.name.startswith(("uvicorn.access", "httpx", "httpcore"))]
    text = "\n".join(r.getMessage() for r in records)
    lines = [r.getMessage() for r in records if r.name == "clienttrack.web.access"]
    assert "POST /r/<redacted> 403" in "\n".join(lines)
    assert any(line.startswith("GET /r/<redacted>/files/1 200 ") and line.endswith("ms") for line in lines)
    assert len(lines) == 7
    assert made.token not in text and made.token[:20] not in text
    assert PASSWORD not in text and "lang=fr" not in text
