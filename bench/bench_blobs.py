"""Sealed files from each blob store: download throughput beside a bare
file read, and the S3 client chosen by measurement.

One gateway in this process serves a 25 MB attachment three ways, each
decrypted chunk by chunk as GET /r/<token>/files/1 streams it to curl in
another process: from the file store (DATA_DIR/blobs/), from S3 (moto's
server in a child process on loopback: an in-memory S3, so its own
Python Werkzeug server is part of the figure), and from SealedChunk rows
in SQLite (how files were kept before the store). Beside them, in the same
run: the same bytes read straight from a file in this process (a bare file
read) and served by a bare Starlette FileResponse, and each store read
alone (no HTTP, no decryption). Rounds are interleaved.

Then the S3 client: obstore (what gateway/blobs/s3.py uses) against
aiobotocore reading the same objects from the same moto server: the big
object streamed (MB/s, and this process's CPU time per GB), and the first
chunk of a ranged GET of a small one (latency and CPU per request: with
about 200 KB of documents a request, what most downloads cost).
aiobotocore is not a dependency: pip install aiobotocore for its rows.

Run: .venv/bin/python bench/bench_blobs.py [--megabytes 25] [--rounds 5]
Needs curl.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_download import download  # noqa: E402
from bench_unlock import demo_gateway, quiet_info_logging  # noqa: E402
from tests.payments_support import serve  # noqa: E402
from tests.s3_support import CREDENTIALS, blob_url, moto_server  # noqa: E402
from tests.web_support import PASSWORD, make_request  # noqa: E402

from gateway.blobs import open_store  # noqa: E402
from gateway.core.models import SealedFile  # noqa: E402
from web.app import create_app  # noqa: E402

MB = 1_000_000
PIECE = 65536
SEALED = PIECE + 16  # a sealed chunk


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_read(path: Path) -> float:
    """MB/s of reading the file in 64 KiB pieces (the page cache is warm)."""
    started, size = time.perf_counter(), 0
    with open(path, "rb", buffering=0) as handle:
        while piece := handle.read(PIECE):
            size += len(piece)
    return size / MB / (time.perf_counter() - started)


async def store_read(store, name: str) -> float:
    started, size = time.perf_counter(), 0
    async for piece in store.read(name):
        size += len(piece)
    return size / MB / (time.perf_counter() - started)


async def unlocked_cookie(base: str, path: str) -> str:
    async with httpx.AsyncClient(base_url=base) as http:
        form = await http.get(path)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        unlocked = await http.post(path, data={"password": PASSWORD, "csrf_token": token})
        return f"ct_session={unlocked.cookies['ct_session']}"


async def s3_clients(endpoint: str, megabytes: int, rounds: int) -> list[tuple[str, list[float], list[float],
                                                                             list[float], list[float]]]:
    """Per client: MB/s and CPU s per GB streaming the big object, per round;
    ms and CPU ms to the first chunk of a small ranged GET, per request."""
    import obstore
    from obstore.store import S3Store

    bucket = blob_url(endpoint).split("/")[2]
    data = os.urandom(megabytes * MB)
    client = S3Store(bucket, endpoint=endpoint, region="us-east-1", access_key_id="k", secret_access_key="s",
                     client_options={"allow_http": True})
    await obstore.put_async(client, "bench", data, use_multipart=False)
    await obstore.put_async(client, "small", data[:4 * SEALED], use_multipart=False)
    del data

    async def with_obstore() -> int:
        size = 0
        async for piece in (await obstore.get_async(client, "bench")).stream(min_chunk_size=4 * PIECE):
            size += len(piece)
        return size

    async def first_with_obstore() -> None:
        found = await obstore.get_async(client, "small", options={"range": {"offset": SEALED}})
        async for _ in found.stream(min_chunk_size=SEALED):
            break

    readers = {"obstore 0.12": (with_obstore, first_with_obstore)}
    try:
        from aiobotocore.session import get_session
    except ImportError:
        print("(aiobotocore is not installed: its row is skipped; pip install aiobotocore)")
        botocore = None
    else:
        botocore = await get_session().create_client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
            aws_secret_access_key="s").__aenter__()

        async def with_aiobotocore() -> int:
            size = 0
            answer = await botocore.get_object(Bucket=bucket, Key="bench")
            async with answer["Body"] as body:
                while piece := await body.read(4 * PIECE):
                    size += len(piece)
            return size

        async def first_with_aiobotocore() -> None:
            answer = await botocore.get_object(Bucket=bucket, Key="small", Range=f"bytes={SEALED}-")
            async with answer["Body"] as body:
                await body.read(SEALED)

        readers["aiobotocore 3.10"] = (with_aiobotocore, first_with_aiobotocore)
    results = {name: ([], [], [], []) for name in readers}
    for _ in range(rounds):
        for name, (read, first) in readers.items():
            started, cpu = time.perf_counter(), cpu_seconds()
            size = await read()
            results[name][0].append(size / MB / (time.perf_counter() - started))
            results[name][1].append((cpu_seconds() - cpu) / (size / 1e9))
            for _ in range(10):
                started, cpu = time.perf_counter(), cpu_seconds()
                await first()
                results[name][2].append((time.perf_counter() - started) * 1000)
                results[name][3].append((cpu_seconds() - cpu) * 1000)
    if botocore is not None:
        await botocore.__aexit__(None, None, None)
    return [(name, *figures) for name, figures in results.items()]


async def main(megabytes: int, rounds: int) -> None:
    if shutil.which("curl") is None:
        sys.exit("curl is not installed: apt-get install curl")
    quiet_info_logging()
    data = os.urandom(megabytes * MB)
    files = [("statement.pdf", "application/pdf", data)]
    with moto_server() as endpoint:
        async with demo_gateway() as gw:
            s3_settings = dataclasses.replace(gw.deps.settings, blob_url=blob_url(endpoint), **CREDENTIALS)
            s3_deps = dataclasses.replace(gw.deps, settings=s3_settings, blobs=open_store(s3_settings))
            paths = {
                "files": (await make_request(gw.deps, files=files)).path,
                "s3": (await make_request(s3_deps, files=files, invoice="1043")).path,
                "rows": (await make_request(gw.deps, files=files, invoice="1044", in_database=True)).path,
            }
            blobs = {kind: (await SealedFile.filter(request__invoice=invoice, position=1).first()).blob
                     for kind, invoice in (("files", "1042"), ("s3", "1043"))}
            plain = gw.deps.settings.data_dir / "plain.pdf"
            plain.write_bytes(data)
            del data

            async def bare_file(request: Request) -> FileResponse:
                return FileResponse(plain, filename="statement.pdf")

            async with serve(create_app(gw.deps)) as base, serve(create_app(s3_deps)) as s3_base, \
                    serve(Starlette(routes=[Route("/file", bare_file)])) as bare_base:
                bases = {"files": base, "s3": s3_base, "rows": base}
                cookies = {kind: await unlocked_cookie(bases[kind], path) for kind, path in paths.items()}
                results: dict[str, list[float]] = {key: [] for key in (
                    "bare read", "bare http", "files", "s3", "rows", "store files", "store s3")}
                for _ in range(rounds):
                    results["bare read"].append(bare_read(plain))
                    results["store files"].append(await store_read(gw.deps.blobs, blobs["files"]))
                    results["store s3"].append(await store_read(s3_deps.blobs, blobs["s3"]))
                    results["bare http"].append((await download(f"{bare_base}/file", cookies["files"]))[0])
                    for kind in ("files", "s3", "rows"):
                        url = f"{bases[kind]}{paths[kind]}/files/1"
                        results[kind].append((await download(url, cookies[kind]))[0])
        clients = await s3_clients(endpoint, megabytes, rounds)

    labels = {
        "bare read": "bare file read (64 KiB reads, in process)",
        "store files": "file store read alone (sealed bytes)",
        "store s3": "S3 store read alone (sealed bytes, moto)",
        "bare http": "bare FileResponse over HTTP (curl)",
        "files": "download from the file store (decrypting)",
        "s3": "download from S3 / moto (decrypting)",
        "rows": "download from SQLite chunk rows (before)",
    }
    print(f"{megabytes} MB file, {rounds} rounds, interleaved (median MB/s; runs)\n")
    for key, label in labels.items():
        rates = results[key]
        print(f"{label:44} {statistics.median(rates):7.0f}   runs: " + " ".join(f"{r:.0f}" for r in rates))
    print(f"\nS3 clients on the same moto server: a {megabytes} MB object streamed; the first chunk of a ranged GET"
          " (medians)\n")
    print(f"{'':18} {'MB/s':>7} {'CPU s/GB':>9} {'first ms':>9} {'CPU ms':>7}")
    for name, rates, cpus, firsts, first_cpus in clients:
        print(f"{name:18} {statistics.median(rates):7.0f} {statistics.median(cpus):9.2f} "
              f"{statistics.median(firsts):9.1f} {statistics.median(first_cpus):7.2f}   MB/s runs: "
              + " ".join(f"{r:.0f}" for r in rates))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.megabytes, args.rounds))
