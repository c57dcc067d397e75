"""The dashboard's requests table: its first page for a firm with 100,000
requests, beside the same page for firms with 10 and 60 requests and a
bare Starlette page of the same bytes, served the same way in the same run.

wrk asks for each page over and over with a signed-in member's cookie:
  - bare Starlette page, the 100,000-request table's bytes (the baseline);
  - GET /staff/ for a firm with 10 requests (10 rows), and with 60 (a full
    page of 50 rows, like the big firm's);
  - GET /staff/ for the firm with 100,000 (first page, newest 50);
  - the same filtered to unpaid (three statuses merged, each off its index);
  - the same 1,000 pages in (a keyset page from row 50,000).
Each is also timed in-process (CPU per request, the app called without
sockets), which holds still when other work shares the machine; wrk's
rates do not. Targets, on CPU per request: the 100,000-request first page
at most 1.25 times the 60-request one (keyset paging: a page costs the same
however many requests the firm has), and at most 25 times the bare page (a
session lookup, two queries and 50 rendered rows against sending bytes).

Run: .venv/bin/python bench/bench_dashboard.py [--requests 100000] [--seconds 5]
Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_unlock import demo_gateway, quiet_info_logging, wrk  # noqa: E402
from gateway.core import directory  # noqa: E402
from gateway.core.models import Firm, Level, PaymentRequest, RequestStatus, Staff  # noqa: E402
from gateway.vault import signin  # noqa: E402
from tests.payments_support import serve  # noqa: E402
from web.app import create_app  # noqa: E402
from web.staff.table import Key  # noqa: E402

STATUSES = [RequestStatus.PAID] * 5 + [RequestStatus.SENT, RequestStatus.VIEWED, RequestStatus.CANCELLED,
                                       RequestStatus.EXPIRED, RequestStatus.FAILED]


async def fill(firm: Firm, staff: Staff, count: int, now: datetime) -> None:
    """``count`` requests over the year before ``now``, statuses mixed. The
    firm keeps documents for 100 years: housekeeping would otherwise start
    removing the (absent) documents of the ended ones during the run."""
    await Firm.filter(id=firm.id).update(retention_days=36500)
    step = timedelta(days=365) / max(count, 1)
    start = now - step * count
    batch = []
    for n in range(count):
        created = start + step * n
        status = STATUSES[n % len(STATUSES)]
        batch.append(PaymentRequest(
            firm=firm, staff=staff, sender=staff.email, invoice=f"INV-{n}", client_email=f"client{n % 5000}@example.com",
            amount_minor=10_000 + n % 90_000, currency="CAD", status=status, token_hash=secrets.token_hex(32),
            kdf={}, wrapped_key=b"", source_message_id=f"<{n}.{firm.id}@bench>", created_at=created,
            expires_at=created + timedelta(days=30), paid_at=created + timedelta(hours=5) if status is RequestStatus.PAID else None))
        if len(batch) == 2000:
            await PaymentRequest.bulk_create(batch)
            batch = []
    if batch:
        await PaymentRequest.bulk_create(batch)


async def cookie_for(base: str, staff: Staff, now: datetime) -> str:
    """A signed-in session's cookie, through a real one-time link."""
    link = await signin.new_link(staff, base_url=base, now=now, actor="bench")
    async with httpx.AsyncClient() as http:
        page = await http.get(link)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        done = await http.post(link, data={"csrf_token": token})
        assert done.status_code == 303, done.text
        return f"ct_staff={done.cookies['ct_staff']}"


async def rate(url: str, cookie: str, seconds: int, connections: int) -> float:
    return await wrk(url, seconds, connections, headers=[f"Cookie: {cookie}"])


async def cpu_ms(app, path: str, cookie: str, count: int = 60) -> float:
    """This process's CPU time per request, the app called in-process (no
    sockets): unlike wrk's rate, it holds still on a machine busy with
    other work."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost",
                                 headers={"cookie": cookie}) as http:
        assert (await http.get(path)).status_code == 200
        started = time.process_time()
        for _ in range(count):
            await http.get(path)
        return (time.process_time() - started) / count * 1000


async def main(requests: int, seconds: int, connections: int, rounds: int) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    quiet_info_logging()
    async with demo_gateway() as gw:
        now = datetime.now(timezone.utc)
        big = await Firm.get(domain="demo.localhost")
        big_staff = await Staff.get(firm=big)
        small = await directory.add_firm("small.example", "Small CPA", currency="CAD", timezone="America/Toronto",
                                         now=now, actor="bench")
        small_staff = await directory.add_staff(small, "admin@small.example", Level.ADMIN, now=now, actor="bench")
        full = await directory.add_firm("full.example", "Full Page CPA", currency="CAD", timezone="America/Toronto",
                                        now=now, actor="bench")
        full_staff = await directory.add_staff(full, "admin@full.example", Level.ADMIN, now=now, actor="bench")
        started = time.perf_counter()
        await fill(big, big_staff, requests, now)
        await fill(small, small_staff, 10, now)
        await fill(full, full_staff, 60, now)
        filled = time.perf_counter() - started
        async with serve(create_app(gw.deps)) as base:
            big_cookie = await cookie_for(base, big_staff, now)
            small_cookie = await cookie_for(base, small_staff, now)
            full_cookie = await cookie_for(base, full_staff, now)
            async with httpx.AsyncClient(base_url=base, headers={"cookie": big_cookie}) as http:
                first = await http.get("/staff/")
                assert first.status_code == 200 and first.text.count('class="client"') == 50
                middle = await PaymentRequest.filter(firm=big).order_by("-created_at", "-id") \
                    .offset(requests // 2).first()
                deep = f"/staff/?after={Key(middle.created_at, middle.id).text()}"
                assert (await http.get(deep)).text.count('class="client"') == 50
            page = first.content

            async def bare_page(request: Request) -> HTMLResponse:
                return HTMLResponse(page)

            bare_app = Starlette(routes=[Route("/staff/", bare_page)])
            app = create_app(gw.deps)
            cpu = {"bare": await cpu_ms(bare_app, "/staff/", "x=y"), "small": await cpu_ms(app, "/staff/", small_cookie),
                   "full": await cpu_ms(app, "/staff/", full_cookie), "big": await cpu_ms(app, "/staff/", big_cookie),
                   "unpaid": await cpu_ms(app, "/staff/?status=unpaid", big_cookie),
                   "deep": await cpu_ms(app, deep, big_cookie)}
            async with serve(bare_app) as bare_base:
                runs: dict[str, list[float]] = {name: [] for name in ("bare", "small", "full", "big", "unpaid", "deep")}
                for _ in range(rounds):
                    runs["bare"].append(await rate(bare_base + "/staff/", "x=y", seconds, connections))
                    runs["small"].append(await rate(base + "/staff/", small_cookie, seconds, connections))
                    runs["full"].append(await rate(base + "/staff/", full_cookie, seconds, connections))
                    runs["big"].append(await rate(base + "/staff/", big_cookie, seconds, connections))
                    runs["unpaid"].append(await rate(base + "/staff/?status=unpaid", big_cookie, seconds, connections))
                    runs["deep"].append(await rate(base + deep, big_cookie, seconds, connections))

    median = {name: statistics.median(values) for name, values in runs.items()}
    labels = {"bare": "bare Starlette page, same bytes", "small": "GET /staff/, firm with 10 requests",
              "full": "GET /staff/, firm with 60 requests",
              "big": f"GET /staff/, firm with {requests:,} requests", "unpaid": "  the same, status=unpaid",
              "deep": f"  the same, page from row {requests // 2:,}"}
    print(f"{requests:,} requests made in {filled:.1f} s; wrk -c{connections}, {rounds} x {seconds}s each "
          "(median req/s); CPU ms per request in-process\n")
    print(f"{'':42} {'req/s':>8} {'cpu ms':>7}")
    for name, label in labels.items():
        print(f"{label:42} {median[name]:8.0f} {cpu[name]:7.2f}   runs: {' '.join(f'{r:.0f}' for r in runs[name])}")
    print(f"\n{'100,000 vs 60 requests':42} {median['big'] / median['full']:8.2f}")
    print(f"{'100,000 vs 10 requests':42} {median['big'] / median['small']:8.2f}")
    print(f"{'100,000 vs the bare page':42} {median['big'] / median['bare']:8.2f}")
    print(f"{'unpaid vs the bare page':42} {median['unpaid'] / median['bare']:8.2f}")
    print(f"{'deep page vs the bare page':42} {median['deep'] / median['bare']:8.2f}")
    print(f"\n{'CPU: 100,000 vs 60 requests (target <= 1.25)':42} {cpu['big'] / cpu['full']:8.2f}")
    print(f"{'CPU: 100,000 vs the bare page (target <= 25)':42} {cpu['big'] / cpu['bare']:8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.seconds, args.connections, args.rounds))
