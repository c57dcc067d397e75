"""Downloading a 25 MB attachment: throughput and the server's memory.

The file is decrypted chunk by chunk (64 KiB, AES-256-GCM) as it streams
out of GET /r/<token>/files/1 to curl in another process. Beside it, in the
same run and served the same way (uvicorn with the service's configuration,
same process), a bare Starlette FileResponse of the same bytes from disk.
Memory: the server process's peak resident set during a download, minus
its resident set just before (the kernel's high-water mark is reset first).
Targets: at least 200 MB/s, under 32 MB of growth.

Run: .venv/bin/python bench/bench_download.py [--megabytes 25] [--rounds 5]
Needs curl.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_unlock import demo_gateway, quiet_info_logging  # noqa: E402
from tests.payments_support import serve  # noqa: E402
from tests.web_support import PASSWORD, make_request  # noqa: E402

from web.app import create_app  # noqa: E402

MB = 1_000_000


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


async def download(url: str, cookie: str) -> tuple[float, float]:
    """(MB/s, peak RSS growth in MB) for one download by curl."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    before = _status_kib("VmRSS")
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sf", "-o", "/dev/null", "-b", cookie, "-w", "%{size_download} %{time_total}", url,
        stdout=asyncio.subprocess.PIPE)
    out = (await proc.communicate())[0].decode().split()
    if proc.returncode:
        raise RuntimeError(f"curl failed with {proc.returncode}")
    size, seconds = int(out[0]), float(out[1])
    return size / MB / seconds, (_status_kib("VmHWM") - before) * 1024 / MB


async def main(megabytes: int, rounds: int) -> None:
    for tool in ("curl",):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install {tool}")
    quiet_info_logging()
    data = os.urandom(megabytes * MB)
    async with demo_gateway() as gw:
        path = (await make_request(gw.deps, files=[("statement.pdf", "application/pdf", data)])).path
        with tempfile.TemporaryDirectory() as scratch:
            plain = Path(scratch) / "statement.pdf"
            plain.write_bytes(data)
            del data

            async def bare_file(request: Request) -> FileResponse:
                return FileResponse(plain, filename="statement.pdf")

            async with serve(create_app(gw.deps)) as base, \
                    serve(Starlette(routes=[Route("/file", bare_file)])) as bare_base:
                async with httpx.AsyncClient(base_url=base) as http:
                    form = await http.get(path)
                    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
                    unlocked = await http.post(path, data={"password": PASSWORD, "csrf_token": token})
                    cookie = f"ct_session={unlocked.cookies['ct_session']}"
                results: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": []}
                for _ in range(rounds):
                    results["bare"].append(await download(f"{bare_base}/file", cookie))
                    results["ours"].append(await download(f"{base}{path}/files/1", cookie))

    print(f"{megabytes} MB file, {rounds} downloads each by curl (median MB/s, largest peak RSS growth)\n")
    print(f"{'':40} {'MB/s':>7} {'growth MB':>10}")
    labels = {"bare": "bare FileResponse, plaintext on disk", "ours": "GET /r/<token>/files/1 (decrypting)"}
    for key, label in labels.items():
        rates = [r for r, _ in results[key]]
        growth = max(g for _, g in results[key])
        print(f"{label:40} {statistics.median(rates):7.0f} {growth:10.1f}   runs: "
              + " ".join(f"{r:.0f}" for r in rates))
    print("\ntargets: at least 200 MB/s, under 32 MB growth")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.megabytes, args.rounds))
