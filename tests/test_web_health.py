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


async def test_metrics_count_what_happened_and_readyz_says_ready(gateway):
    from tests.conftest import request_mail, send, settled
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.web_port}") as http:
        before = await http.get("/metrics")
        await send(gateway, request_mail("Invoice 5 $10.00 to=jane@client.example pw=Blue42"))
        await settled()
        after = await http.get("/metrics")
        ready = await http.get("/readyz")
    assert after.headers["content-type"].startswith("text/plain")
    assert _sample(after.text, 'clienttrack_smtp_messages_total{result="accepted"}') == \
        _sample(before.text, 'clienttrack_smtp_messages_total{result="accepted"}') + 1
    assert _sample(after.text, 'clienttrack_outbound_deliveries_total{result="sent"}') >= \
        _sample(before.text, 'clienttrack_outbound_deliveries_total{result="sent"}') + 2
    assert _sample(after.text, 'clienttrack_queue_depth{queue="inbound"}') == 0
    assert 'clienttrack_queue_oldest_age_seconds{queue="outbound"}' in after.text
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert ready.json()["queues"]["inbound"] == {"depth": 0, "oldest_seconds": 0.0}


async def test_readyz_is_red_while_a_loop_cannot_work(tmp_path):
    from gateway.service import running
    from tests.conftest import make_settings
    # The web's process without runners: a live outbox here would mark
    # itself working again at its next step, whenever that falls between
    # the failure set below and the request reading it.
    async with running(make_settings(tmp_path, roles=("smtp", "web"))) as gateway:
        gateway.deps.health.failing("outbox", "OSError: disk full")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.web_port}") as http:
            red = await http.get("/readyz")
            alive = await http.get("/healthz")
    assert red.status_code == 503 and red.json()["problems"] == {"outbox": "failing: OSError: disk full"}
    assert alive.status_code == 200  # alive all the same: a restart would not mend the disk


def _sample(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
