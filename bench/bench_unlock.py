"""Unlocking a client's request: latency, and the unlock page's throughput.

1. Unlock latency: POST /r/<token> with the right password, answered 303,
   p50 and p99 over sequential unlocks (and four clients at once) by an
   HTTP client in another process, beside one bare Argon2id derivation
   with the same parameters timed in the same run.
2. GET /r/<token> (the unlock page) requests per second under wrk, beside
   a bare Starlette page of the same bytes served the same way: uvicorn
   with the service's configuration, in the same process and event loop.
   Target: at least 0.5 of the bare page. wrk asks for one link over and
   over, so the page comes from the few-seconds form cache
   (web/formcache.py); the same page with that cache off (every GET reads
   the database and renders the template) is measured beside them.

Both apps are served by gateway.service.start_web on its own kind of
socket (TCP_NODELAY: see BENCHMARKS.md), through tests.payments_support.serve.

Run: .venv/bin/python bench/bench_unlock.py [--unlocks 60] [--seconds 5]
Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import vault  # noqa: E402
from gateway.core import settings as settings_module  # noqa: E402
from gateway.service import Running, running  # noqa: E402
from tests.payments_support import serve  # noqa: E402
from tests.web_support import PASSWORD, make_request  # noqa: E402
from web.app import create_app  # noqa: E402
from web.limits import Limits  # noqa: E402

# One client process: unlock `count` times, each in a fresh cookie jar,
# printing each POST's latency in seconds as JSON.
UNLOCK_CLIENT = r"""
import json, re, sys, time, httpx
base, path, password, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
latencies = []
with httpx.Client(base_url=base) as http:
    for _ in range(count):
        http.cookies.clear()
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(path).text).group(1)
        started = time.perf_counter()
        answer = http.post(path, data={"password": password, "csrf_token": token})
        latencies.append(time.perf_counter() - started)
        assert answer.status_code == 303, answer.status_code
print(json.dumps(latencies))
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


@contextlib.asynccontextmanager
async def demo_gateway() -> AsyncIterator[Running]:
    """The whole gateway in this process, on a scratch data directory."""
    with tempfile.TemporaryDirectory() as data:
        options = {"data_dir": Path(data), "demo": True, "smtp_port": 0, "web_port": 0, "queue_workers": 1}
        async with running(settings_module.load(options, environ={})) as gw:
            yield gw


def quiet_info_logging() -> None:
    """Log at INFO as `clienttrack serve` does (the access log included), to nowhere."""
    logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"))
    logging.getLogger("tortoise").setLevel(logging.WARNING)


async def run_client(code: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, *args, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"client failed with {proc.returncode}")
    return out.decode()


async def unlock_latencies(base: str, path: str, count: int, clients: int) -> list[float]:
    outputs = await asyncio.gather(*(run_client(UNLOCK_CLIENT, base, path, PASSWORD, str(count // clients))
                                     for _ in range(clients)))
    return [x for out in outputs for x in json.loads(out)]


def bare_derivations(gw: Running, count: int) -> list[float]:
    params = vault.new_kdf_params(gw.deps.settings.kdf_memory_kib, gw.deps.settings.kdf_iterations)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        vault.derive_kek(PASSWORD, params)
        times.append(time.perf_counter() - started)
    return times


async def wrk(url: str, seconds: int, connections: int, headers: list[str] = ()) -> float:
    extra = [word for header in headers for word in ("-H", header)]
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *extra, url, stdout=asyncio.subprocess.PIPE)
    out = (await proc.communicate())[0].decode()
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


async def main(unlocks: int, seconds: int, connections: int, rounds: int) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    quiet_info_logging()
    async with demo_gateway() as gw:
        requests = [(await make_request(gw.deps)).path for _ in range(3)]
        async with serve(create_app(gw.deps)) as base, \
                serve(create_app(gw.deps, Limits(form_page_seconds=0))) as uncached_base:
            async with httpx.AsyncClient(base_url=base) as http:
                page = (await http.get(requests[2])).content

            async def bare_page(request: Request) -> HTMLResponse:
                return HTMLResponse(page)

            async with serve(Starlette(routes=[Route("/r/{token}", bare_page)])) as bare_base:
                derive = bare_derivations(gw, unlocks)
                sequential = await unlock_latencies(base, requests[0], unlocks, 1)
                parallel = await unlock_latencies(base, requests[1], unlocks, 4)
                ours, bare, uncached = [], [], []
                for _ in range(rounds):
                    bare.append(await wrk(bare_base + requests[2], seconds, connections))
                    ours.append(await wrk(base + requests[2], seconds, connections))
                    uncached.append(await wrk(uncached_base + requests[2], seconds, connections))

    ms = lambda values, p: f"{percentile(values, p) * 1000:7.1f}"  # noqa: E731
    print(f"Argon2id m={gw.deps.settings.kdf_memory_kib} KiB t={gw.deps.settings.kdf_iterations} p=1; "
          f"{unlocks} unlocks each\n")
    print(f"{'':38} {'p50 ms':>7} {'p99 ms':>7}")
    print(f"{'bare Argon2id derivation':38} {ms(derive, 50)} {ms(derive, 99)}")
    print(f"{'unlock POST, 1 client':38} {ms(sequential, 50)} {ms(sequential, 99)}")
    print(f"{'unlock POST, 4 clients at once':38} {ms(parallel, 50)} {ms(parallel, 99)}")
    ours_rate, bare_rate = statistics.median(ours), statistics.median(bare)
    print(f"\nGET unlock page, wrk -c{connections}, {rounds} x {seconds}s each (median req/s)")
    print(f"{'bare Starlette page, same bytes':38} {bare_rate:9.0f}   runs: {' '.join(f'{r:.0f}' for r in bare)}")
    print(f"{'GET /r/<token> (unlock page)':38} {ours_rate:9.0f}   runs: {' '.join(f'{r:.0f}' for r in ours)}")
    print(f"{'ratio (target >= 0.5)':38} {ours_rate / bare_rate:9.2f}")
    uncached_rate = statistics.median(uncached)
    print(f"{'same, form cache off':38} {uncached_rate:9.0f}   runs: {' '.join(f'{r:.0f}' for r in uncached)}")
    print(f"{'ratio':38} {uncached_rate / bare_rate:9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unlocks", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.unlocks, args.seconds, args.connections, args.rounds))
