"""`clienttrack serve`: the roles one process runs, the banner, and how
the web side stops."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from gateway.core.models import InboundMessage, InboundStatus, PaymentRequest
from gateway.core.settings import SettingsError
from gateway.service import banner, listening_socket, running, start_web
from tests.conftest import make_settings, request_mail, send, settled


async def test_roles_split_admission_from_processing(tmp_path):
    async with running(make_settings(tmp_path, roles="smtp,web")) as front:
        await send(front, request_mail("Invoice 9 $10.00 to=jane@client.example pw=Blue42"))
        assert (await InboundMessage.get()).status is InboundStatus.QUEUED
    async with running(make_settings(tmp_path, roles="queue,outbox")):
        await settled()
        assert await PaymentRequest.all().count() == 1


def test_unknown_roles_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="roles: expected some of smtp, web, queue, outbox"):
        make_settings(tmp_path, roles="smtp,mailer")


async def test_the_demo_banner_tells_a_newcomer_what_to_do(gateway):
    text = banner(gateway.deps.settings, gateway.smtp_port)
    assert f"swaks --server 127.0.0.1:{gateway.smtp_port}" in text
    assert "python3 -c" in text
    assert f"{gateway.deps.settings.public_base_url}/demo/outbox" in text


async def test_a_request_in_flight_gets_its_whole_answer_when_the_web_server_stops():
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(scope, receive, send):
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"all of it"})

    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    web, task = await start_web(slow, sock)
    async with httpx.AsyncClient() as client:
        answer = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/invoice"))
        await entered.wait()
        web.stop()
        # The stop begins by closing the listening socket: no new connections.
        async with asyncio.timeout(30):
            while await _connects(port):
                await asyncio.sleep(0.01)
        assert not task.done()  # it waits for the request it is serving
        release.set()
        response = await answer
    assert (response.status_code, response.text) == (200, "all of it")
    await asyncio.wait_for(task, 30)


async def _connects(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionError:  # refused; or reset, when the listening socket closed with it waiting
        return False
    writer.close()
    return True


async def test_a_gateway_with_nothing_to_finish_stops_without_waiting_out_a_clock(tmp_path, monkeypatch):
    # uvicorn alone saw a stop only at its next 0.1 s tick and then slept
    # 0.1 s more: every stop took 0.2 s for nothing (tests stop about a
    # thousand gateways a run). Here the event loop's clock stands still
    # once the gateway runs, so a stop that waits for any timer (a sleep, a
    # tick) never ends; a thread thaws the clock after 30 s so that such a
    # stop ends, and the test fails, instead of hanging.
    loop = asyncio.get_running_loop()
    thawed = threading.Event()
    real_time = loop.time
    async with running(make_settings(tmp_path)):
        frozen_at = real_time()
        monkeypatch.setattr(loop, "time", lambda: real_time() if thawed.is_set() else frozen_at)
        watchdog = threading.Timer(30, loop.call_soon_threadsafe, [thawed.set])
        watchdog.start()
    watchdog.cancel()
    assert not thawed.is_set(), "the gateway's stop waited for the event loop's clock"
