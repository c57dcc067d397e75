"""The pay page is only for a browser that unlocked the request."""

from __future__ import annotations

import httpx

from tests.web_support import PASSWORD, base_url, make_request, submit

pytest_plugins = ["tests.web_fixtures"]


async def test_the_pay_page_needs_the_password_first(clocked):
    made = await make_request(clocked.deps)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        before = await http.get(f"{made.path}/pay")
        assert before.status_code == 303 and before.headers["location"] == made.path
        await submit(http, made.path, PASSWORD)
        page = await http.get(f"{made.path}/pay")
    assert page.status_code == 200
    assert "$1,250.00 CAD" in page.text and "contact Demo Accounting" in page.text
    assert f'href="{made.path}"' in page.text
