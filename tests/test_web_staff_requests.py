"""The requests table and a request's page, over real HTTP: who sees what
(checked by URL), the filters, the search, paging through every request
exactly once, and what a request's page shows and never shows."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from gateway.core import events
from gateway.core.models import Firm, Level, PaymentRequest, RequestStatus
from tests.staff_support import ADMIN, add_requests, colleague, signed_in
from tests.web_support import make_request

pytest_plugins = ["tests.web_fixtures"]

ROW = re.compile(r'<td data-label="Client" class="client"><a href="/staff/requests/(\d+)">([^<]+)</a>')
PAGER = re.compile(r'<a href="/staff/\?([^"]+)" rel="(next|prev)">')


def rows(page) -> list[tuple[int, str]]:
    return [(int(i), client) for i, client in ROW.findall(page.text)]


def link(page, rel: str) -> str | None:
    found = {r: html.unescape(q) for q, r in PAGER.findall(page.text)}
    return f"/staff/?{found[rel]}" if rel in found else None


async def test_send_level_sees_only_their_own_requests_and_a_colleagues_is_a_404(clocked):
    await colleague(clocked, "ann@demo.localhost", Level.SEND)
    await colleague(clocked, "bo@demo.localhost", Level.REPORT)
    mine = await add_requests(clocked, 3, sender="ann@demo.localhost", client="ann-client{n}@example.com")
    theirs = await add_requests(clocked, 2, sender=ADMIN, client="admin-client{n}@example.com")

    async with signed_in(clocked, "ann@demo.localhost") as http:
        table = await http.get("/staff/")
        assert "Your payment requests" in table.text
        assert {i for i, _ in rows(table)} == set(mine)
        assert 'id="f-staff"' not in table.text  # no "sent by" filter to pick a colleague
        # Naming a colleague in the address changes nothing.
        assert {i for i, _ in rows(await http.get(f"/staff/?staff={ADMIN}"))} == set(mine)
        assert (await http.get(f"/staff/requests/{mine[0]}")).status_code == 200
        for other in theirs:
            page = await http.get(f"/staff/requests/{other}")
            assert page.status_code == 404 and "admin-client" not in page.text
        assert (await http.get("/staff/requests/999999")).status_code == 404

    async with signed_in(clocked, "bo@demo.localhost") as http:
        table = await http.get("/staff/")
        assert {i for i, _ in rows(table)} == set(mine + theirs)
        assert 'id="f-staff"' in table.text
        assert {i for i, _ in rows(await http.get("/staff/?staff=ann@demo.localhost"))} == set(mine)
        assert (await http.get(f"/staff/requests/{theirs[0]}")).status_code == 200


async def test_another_firms_requests_are_never_shown(clocked):
    other = await Firm.create(domain="other.example", name="Other", created_at=clocked.deps.clock())
    ids = await add_requests(clocked, 2)
    await PaymentRequest.filter(id=ids[0]).update(firm_id=other.id)
    async with signed_in(clocked) as http:
        assert [i for i, _ in rows(await http.get("/staff/"))] == [ids[1]]
        assert (await http.get(f"/staff/requests/{ids[0]}")).status_code == 404


async def test_the_unpaid_filter_the_status_filter_and_the_search(clocked):
    by_status = {}
    for status in (RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.FAILED, RequestStatus.PAID,
                   RequestStatus.CANCELLED, RequestStatus.DISPUTED):
        by_status[status] = await add_requests(clocked, 2, status=status, client=f"{status.value}{{n}}@example.com")
    async with signed_in(clocked) as http:
        unpaid = {i for i, _ in rows(await http.get("/staff/?status=unpaid"))}
        assert unpaid == set(by_status[RequestStatus.SENT] + by_status[RequestStatus.VIEWED]
                             + by_status[RequestStatus.FAILED])
        paid = await http.get("/staff/?status=paid")
        assert {i for i, _ in rows(paid)} == set(by_status[RequestStatus.PAID])
        assert '<option value="paid" selected>' in paid.text
        assert {i for i, _ in rows(await http.get("/staff/?status=disputed"))} == set(by_status[RequestStatus.DISPUTED])

        first_paid = by_status[RequestStatus.PAID][0]
        found = await http.get(f"/staff/?q=INV-{first_paid}")
        assert [i for i, _ in rows(found)] == [first_paid]
        assert {i for i, _ in rows(await http.get("/staff/?q=CANCELLED"))} == set(by_status[RequestStatus.CANCELLED])
        assert rows(await http.get("/staff/?q=nobody-at-all")) == []
        wrong = await http.get("/staff/?status=lost&period=someday")
        assert "was not understood" in wrong.text and len(rows(wrong)) == 12


async def test_the_period_filter_is_in_the_firms_timezone(clocked, clock):
    # The clock reads 2026-03-02 15:00 UTC: 10:00 in Toronto.
    today = await add_requests(clocked, 2, start=clock() - timedelta(hours=4), every=timedelta(hours=1))
    yesterday = await add_requests(clocked, 1, start=clock() - timedelta(hours=14))  # 01:00 UTC = 20:00 the day before
    last_month = await add_requests(clocked, 1, start=clock() - timedelta(days=10))
    async with signed_in(clocked) as http:
        assert {i for i, _ in rows(await http.get("/staff/?period=today"))} == set(today)
        assert {i for i, _ in rows(await http.get("/staff/?period=yesterday"))} == set(yesterday)
        assert {i for i, _ in rows(await http.get("/staff/?period=last-month"))} == set(last_month)
        custom = await http.get("/staff/?period=2026-02")
        assert {i for i, _ in rows(custom)} == set(last_month)
        assert '<option value="2026-02" selected>' in custom.text


async def test_paging_shows_every_request_once_newest_first_and_back(clocked):
    ids = await add_requests(clocked, 123)
    # Two at the same instant: the id breaks the tie.
    twins = await add_requests(clocked, 2, start=clocked.deps.clock() - timedelta(minutes=61), every=timedelta(0))
    expected = sorted(ids + twins, key=lambda i: (i not in twins, i), reverse=True)
    async with signed_in(clocked) as http:
        seen, pages, path = [], [], "/staff/"
        while path:
            page = await http.get(path)
            pages.append(page)
            seen += [i for i, _ in rows(page)]
            path = link(page, "next")
        assert len(pages) == 3 and [len(rows(p)) for p in pages] == [50, 50, 25]
        assert len(seen) == len(set(seen)) == 125
        created = {r.id: r.created_at for r in await PaymentRequest.all()}
        assert seen == sorted(seen, key=lambda i: (created[i], i), reverse=True)
        assert set(seen) == set(expected)
        assert link(pages[0], "prev") is None
        back = await http.get(link(pages[2], "prev"))
        assert [i for i, _ in rows(back)] == [i for i, _ in rows(pages[1])]
        first = await http.get(link(back, "prev"))
        assert [i for i, _ in rows(first)] == [i for i, _ in rows(pages[0])]
        assert link(first, "prev") is None

        # Two statuses merged page by page, in the same order.
        await add_requests(clocked, 60, status=RequestStatus.VIEWED)
        await add_requests(clocked, 5, status=RequestStatus.PAID)
        created = {r.id: (r.created_at, r.id) for r in await PaymentRequest.filter(
            status__in=[RequestStatus.SENT, RequestStatus.VIEWED])}
        page = await http.get("/staff/?status=unpaid")
        assert "status=unpaid" in link(page, "next")
        both = [i for i, _ in rows(page)] + [i for i, _ in rows(await http.get(link(page, "next")))]
        assert both == sorted(created, key=created.get, reverse=True)[:100]


async def test_a_requests_page_has_its_timeline_and_file_names_but_never_their_contents(clocked):
    made = await make_request(clocked.deps, files=[("invoice-1042.pdf", "application/pdf", b"%PDF secret figures" * 100),
                                                   ("Relevé.csv", "text/csv", b"a,b\n1,2\n")])
    firm = await Firm.get(domain="demo.localhost")
    await events.record(clocked.deps.clock(), ADMIN, "request.created", firm=firm, request=made.request)
    await events.record(clocked.deps.clock(), "jane@client.example", "request.viewed", firm=firm, request=made.request)
    async with signed_in(clocked) as http:
        page = await http.get(f"/staff/requests/{made.request.id}")
    text = html.unescape(page.text)
    assert "Request to jane@client.example" in text and "R" + str(made.request.id) in text
    assert "invoice-1042.pdf" in text and "1.9 KB" not in text and "2 KB" in text and "Relevé.csv" in text
    assert "secret figures" not in text and "Hello Jane" not in text
    assert re.search(r"Sent</span> <span class=\"who\">staff@demo.localhost", text)
    assert "Opened by the client" in text and "Times are in America/Toronto" in text
    assert "Remind the client" in text and "Cancel the request" in text and "Refund" not in text.split("History")[0]
