"""The assembled app: unknown paths, and a flood of tries answered 503."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import httpx

from tests.web_support import base_url, csrf_token, make_request
from web.app import create_app
from web.limits import Limits

pytest_plugins = ["tests.web_fixtures"]


async def test_an_unknown_path_gets_the_friendly_not_found_page(clocked):
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        page = await http.get("/r/abc/unknown/deeper")
    assert page.status_code == 404 and "contact the firm" in page.text


async def test_tries_beyond_the_waiting_room_are_told_to_come_back(clocked):
    made = await make_request(clocked.deps)
    # The first derivation keeps its slot until two answers are back (or
    # 10 s pass): on a busy machine it could otherwise end before the last
    # try reached the gate, which then found the slot free.
    answered: list[httpx.Response] = []
    two_answered = asyncio.Event()
    held = []

    async def first_one_held(fn, *args):
        if not held:
            held.append(fn)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(two_answered.wait(), 10)
        return await clocked.deps.in_crypto_pool(fn, *args)

    deps = dataclasses.replace(clocked.deps)
    deps.in_crypto_pool = first_one_held
    app = create_app(deps, Limits(derivation_slots=1, max_waiting=1, address_burst=50))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url(clocked)) as http:
        token = csrf_token(await http.get(made.path))

        async def try_one(n: int) -> httpx.Response:
            answer = await http.post(made.path, data={"password": f"wrong{n}", "csrf_token": token})
            answered.append(answer)
            if len(answered) == 2:
                two_answered.set()
            return answer

        answers = await asyncio.gather(*(try_one(n) for n in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses[:2] == [403, 403] and statuses[2:] == [503, 503], statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] == "5" and "try again" in busy.text


async def test_the_payment_routes_are_mounted(clocked):
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        unsigned = await http.post("/stripe/webhook", content=b"{}")
    assert unsigned.status_code == 400
