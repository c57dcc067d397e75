"""`clienttrack blobs migrate`: a database full of chunk rows moves into
the configured store (files, or S3 through moto) while the gateway serves,
every download byte-identical before, during and after; stopped half-way
and run again, it finishes without leaving anything twice."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path

import httpx
import pytest

from gateway.core.models import SealedChunk, SealedFile
from gateway.documents import migrate
from gateway.documents.storing import name_for
from gateway.service import running
from gateway.vault import sealed
from tests.conftest import make_settings
from tests.web_support import PASSWORD, base_url, make_request, submit

pytest_plugins = ["tests.s3_support"]

SIZES = [0, 1, 65536, 65537, 3 * 65536 + 99, 700_000]


@pytest.fixture(params=["files", "s3"])
async def gw(request, tmp_path: Path):
    options = request.getfixturevalue("s3_options") if request.param == "s3" else {}
    async with running(make_settings(tmp_path, **options)) as started:
        yield started


async def legacy_requests(gw, count: int = 2) -> list[tuple[str, list[bytes]]]:
    """Requests stored the old way: every sealed chunk a row."""
    made = []
    for n in range(count):
        datas = [os.urandom(size) for size in SIZES]
        files = [(f"file-{i}.pdf", "application/pdf", data) for i, data in enumerate(datas)]
        made.append(((await make_request(gw.deps, files=files, invoice=f"M{n}", in_database=True)).path, datas))
    return made


async def downloads(gw, path: str, count: int, http: httpx.AsyncClient | None = None) -> list[bytes]:
    """Each file as the client downloads it (unlocking first, unless `http` has)."""
    if http is not None:
        return [(await http.get(f"{path}/files/{i}")).content for i in range(1, count + 1)]
    async with httpx.AsyncClient(base_url=base_url(gw)) as http:
        assert (await submit(http, path, PASSWORD)).status_code == 303
        return await downloads(gw, path, count, http)


async def run_cli(gw, *args: str) -> tuple[int, str]:
    """`clienttrack blobs migrate` in a process of its own, as an operator would run it."""
    settings = gw.deps.settings
    env = {**os.environ, "CLIENTTRACK_DATA_DIR": str(settings.data_dir), "CLIENTTRACK_BLOB_URL": settings.blob_url,
           "CLIENTTRACK_DATABASE_URL": settings.database_url,
           "AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
           "AWS_SECRET_ACCESS_KEY": str(settings.aws_secret_access_key or "")}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "blobs", "migrate", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await child.communicate()
    return child.returncode, out.decode()


async def test_migrate_moves_every_file_while_serving_and_downloads_stay_identical(gw):
    made = await legacy_requests(gw)
    new = await make_request(gw.deps, files=[("new.pdf", "application/pdf", b"%PDF new")], invoice="N1")
    rows_before = await SealedChunk.all().count()
    assert rows_before > 30
    for path, datas in made:
        assert await downloads(gw, path, len(datas)) == datas

    # Clients who unlocked keep downloading while the command runs beside the gateway.
    clients = [httpx.AsyncClient(base_url=base_url(gw)) for _ in made]
    for http, (path, _) in zip(clients, made):
        assert (await submit(http, path, PASSWORD)).status_code == 303

    async def keep_downloading() -> int:
        rounds = 0
        while not done.is_set() or rounds < len(made):
            path, datas = made[rounds % len(made)]
            assert await downloads(gw, path, len(datas), clients[rounds % len(made)]) == datas
            rounds += 1
        return rounds

    done = asyncio.Event()
    reader = asyncio.create_task(keep_downloading())
    code, out = await run_cli(gw, "--batch", "4")
    done.set()
    assert await reader >= len(made)
    for http in clients:
        await http.aclose()
    assert code == 0, out
    assert f"Moved {len(made) * (len(SIZES) + 1)} files" in out

    assert await SealedChunk.all().count() == 0
    assert await SealedFile.filter(blob="").count() == 0
    for path, datas in made:
        assert await downloads(gw, path, len(datas)) == datas
    assert (await downloads(gw, new.path, 1)) == [b"%PDF new"]
    # Run again: nothing left to do.
    code, out = await run_cli(gw)
    assert code == 0 and "Moved 0 files" in out, out


async def test_a_download_that_started_on_rows_carries_on_from_the_store(gw):
    data = os.urandom(40 * 65536 + 5)
    made = await make_request(gw.deps, files=[("big.pdf", "application/pdf", data)], in_database=True)
    file = await SealedFile.get(request_id=made.request.id, position=1)
    key = sealed.unlock(made.request, PASSWORD)
    stream = sealed.stream(file, key, gw.deps.blobs)
    head = [await anext(stream) for _ in range(3)]
    assert await migrate.move_file(gw.deps.blobs, file) == file.chunk_count * 16 + len(data)
    rest = [chunk async for chunk in stream]
    assert hashlib.sha256(b"".join(head + rest)).digest() == hashlib.sha256(data).digest()

    # The same through the web, the move landing mid-download.
    again = await make_request(gw.deps, files=[("big.pdf", "application/pdf", data)], in_database=True)
    file = await SealedFile.get(request_id=again.request.id, position=1)
    async with httpx.AsyncClient(base_url=base_url(gw)) as http:
        await submit(http, again.path, PASSWORD)
        async with http.stream("GET", f"{again.path}/files/1") as response:
            body = bytearray()
            pieces = response.aiter_bytes()
            body += await anext(pieces)
            await migrate.move_file(gw.deps.blobs, file)
            async for piece in pieces:
                body += piece
    assert bytes(body) == data


async def test_stopped_half_way_and_run_again_nothing_is_lost_or_left_twice(gw):
    made = await legacy_requests(gw, count=2)
    files = await SealedFile.filter(blob="").order_by("id")
    # A run that died: one file moved, one written to the store but not yet named.
    assert await migrate.move_file(gw.deps.blobs, files[0])
    chunks = await SealedChunk.filter(file_id=files[1].id).order_by("index").values_list("data", flat=True)
    await gw.deps.blobs.put(name_for(files[1].file_salt), [bytes(c) for c in chunks])

    moved = await migrate.migrate(gw.deps.blobs, batch=3)
    assert moved.files == len(files) - 1 and not moved.damaged
    for path, datas in made:
        assert await downloads(gw, path, len(datas)) == datas
    names = await SealedFile.all().values_list("blob", flat=True)
    assert len(set(names)) == len(names) == len(files)
    if not gw.deps.settings.blob_url:
        on_disk = [p for p in gw.deps.settings.blobs_dir.rglob("*") if p.is_file()]
        assert len(on_disk) == len(files), "one object per file, none twice"


async def test_damaged_rows_are_left_where_they_are_and_named(tmp_path: Path):
    async with running(make_settings(tmp_path)) as gw:
        await _damaged_rows_are_left(gw)


async def _damaged_rows_are_left(gw) -> None:
    made = await make_request(gw.deps, files=[("a.pdf", "application/pdf", os.urandom(5 * 65536))],
                              in_database=True)
    file = await SealedFile.get(request_id=made.request.id, position=1)
    await SealedChunk.filter(file_id=file.id, index=2).delete()
    code, out = await run_cli(gw)
    assert code == 1 and f"[{file.id}]" in out, out
    assert await SealedChunk.filter(file_id=file.id).count() == 4  # as they were
    assert (await SealedFile.get(id=file.id)).blob == ""
