"""The web side of issue 10, each case through the real server on loopback:
forwarded addresses, errors that still carry the security headers,
malformed tokens, and a client that trickles its headers in."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.routing import Route

from gateway.service import running
from tests.conftest import make_settings
from tests.test_web_security import assert_page_headers
from tests.web_support import base_url, csrf_token, make_request
from web.app import create_app
from web.proxies import client_address, networks

pytest_plugins = ["tests.web_fixtures"]


# --------------------------------------------------------------------------
# X-Forwarded-For
# --------------------------------------------------------------------------


async def wrong_passwords(http: httpx.AsyncClient, paths: list[str], tries: int, forwarded) -> list[int]:
    """``tries`` wrong passwords spread over the links (so none locks),
    each with the X-Forwarded-For that ``forwarded(n)`` gives."""
    codes = []
    for n in range(tries):
        path = paths[n % len(paths)]
        form = await http.get(path)
        answer = await http.post(path, data={"password": "wrong", "csrf_token": csrf_token(form)},
                                 headers={"X-Forwarded-For": forwarded(n)})
        codes.append(answer.status_code)
    return codes


async def test_a_forged_x_forwarded_for_does_not_buy_more_guesses(clocked):
    made = [await make_request(clocked.deps) for _ in range(3)]
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        codes = await wrong_passwords(http, [m.path for m in made], 12, lambda n: f"198.51.100.{n}")
    # The loopback client is one address whatever it claims: 10 tries, then wait.
    assert codes[:10] == [403] * 10 and codes[10:] == [429, 429], codes


async def test_behind_a_trusted_proxy_the_address_it_saw_counts(tmp_path, clock):
    async with running(make_settings(tmp_path, trusted_proxies="127.0.0.1"), clock=clock) as gw:
        made = [await make_request(gw.deps) for _ in range(4)]
        async with httpx.AsyncClient(base_url=base_url(gw)) as http:
            # What the client wrote stands left of what our proxy appended.
            codes = await wrong_passwords(http, [m.path for m in made], 12, lambda n: f"10.9.9.{n}, 203.0.113.7")
            assert codes[10:] == [429, 429], codes
            others = await wrong_passwords(http, [m.path for m in made], 2, lambda n: "203.0.113.8")
            assert others == [403, 403]


@pytest.mark.parametrize("peer, forwarded, trusted, expected", [
    ("127.0.0.1", ["203.0.113.9"], "", "127.0.0.1"),
    ("127.0.0.1", ["203.0.113.9"], "127.0.0.1", "203.0.113.9"),
    ("10.0.0.5", ["1.2.3.4, 203.0.113.9, 10.0.0.4"], "10.0.0.0/8", "203.0.113.9"),
    ("10.0.0.5", ["1.2.3.4", "203.0.113.9"], "10.0.0.0/8", "203.0.113.9"),
    ("10.0.0.5", ["junk"], "10.0.0.0/8", "10.0.0.5"),
    ("10.0.0.5", [], "10.0.0.0/8", "10.0.0.5"),
    ("10.0.0.5", ["10.0.0.3"], "10.0.0.0/8", "10.0.0.5"),
    ("192.0.2.1", ["203.0.113.9"], "10.0.0.0/8", "192.0.2.1"),
    ("::ffff:10.0.0.5", ["2001:db8::7"], "10.0.0.0/8", "2001:db8::7"),
])
def test_client_address(peer, forwarded, trusted, expected):
    assert client_address(peer, forwarded, networks(trusted.split(",") if trusted else ())) == expected


# --------------------------------------------------------------------------
# Errors and malformed tokens
# --------------------------------------------------------------------------


async def test_a_500_carries_the_security_headers(clocked):
    app = create_app(clocked.deps)

    async def boom(request):
        raise RuntimeError("boom")

    app.router.routes.append(Route("/boom", boom))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/boom")
    assert answer.status_code == 500
    assert_page_headers(answer)
    assert answer.headers["cache-control"] == "no-store"
    assert "boom" not in answer.text


@pytest.mark.parametrize("token", ["%C3%A9", "1.2.%C3%A9%C3%A9", "%E2%80%AE", "1.9999999999.%00", "%F0%9F%92%B3.1.x"])
@pytest.mark.parametrize("path", ["/stripe/connect/return", "/stripe/connect/refresh"])
async def test_a_malformed_setup_token_is_a_404(clocked, path, token):
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        answer = await http.get(f"{path}?t={token}")
    assert answer.status_code == 404
    assert_page_headers(answer)


async def test_a_non_ascii_form_token_is_refused_not_an_error(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        await http.get(made.path)
        answer = await http.post(made.path, data={"password": "x", "csrf_token": "é" * 43})
    assert answer.status_code == 403
    assert_page_headers(answer)


# --------------------------------------------------------------------------
# A client that trickles its headers in
# --------------------------------------------------------------------------


async def closed(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (within 30 s)."""
    try:
        return await asyncio.wait_for(reader.read(), 30) == b""
    except ConnectionError:
        return True


# The server runs in the test's event loop. Its deadline is counted in ticks
# of 0.1 s taken in that loop, not in seconds: when a busy machine stalls
# the process, the ticks stall with the server's timer, and a bound in
# seconds (1.5 s for a 0.5 s deadline) would have failed.
TICK = 0.1


async def test_headers_that_do_not_arrive_in_time_close_the_connection(tmp_path):
    async with running(make_settings(tmp_path, web_header_timeout=0.5, roles="web")) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.web_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        trickled = 0

        async def trickle() -> None:
            nonlocal trickled
            for _ in range(30):  # a byte a tick: never the blank line
                await asyncio.sleep(TICK)
                writer.write(b"X")
                await writer.drain()
                trickled += 1

        trickling = asyncio.create_task(trickle())
        assert await closed(reader)
        # About 5 ticks: the bytes did not put the deadline off (each one
        # would have, to 3 s and more).
        assert trickled < 15, trickled
        trickling.cancel()
        await asyncio.gather(trickling, return_exceptions=True)
        writer.close()


async def test_a_kept_alive_connection_gets_the_same_deadline(tmp_path):
    async with running(make_settings(tmp_path, web_header_timeout=0.5, roles="web")) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.web_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # the next request's head, never finished
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(TICK)
                ticks += 1

        ticking = asyncio.create_task(tick())
        assert await closed(reader)
        ticking.cancel()
        # About 5 ticks, not uvicorn's keep-alive timeout (5 s: 50 ticks).
        assert ticks < 15, ticks
        writer.close()


async def test_a_slow_but_steady_request_is_served(tmp_path):
    async with running(make_settings(tmp_path, web_header_timeout=2, roles="web")) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.web_port)
        for part in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            writer.write(part)
            await asyncio.sleep(0.2)
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
