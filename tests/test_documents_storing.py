"""New documents go to the blob store, never the database: mail in, the
client's download out, with each store (files under DATA_DIR/blobs/, and
S3 through moto's server)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import httpx
import pytest

from gateway.blobs import BlobMissing
from gateway.core.models import PaymentRequest, SealedChunk, SealedFile
from gateway.service import running
from gateway.vault import sealed
from tests.conftest import make_settings, mails_to, request_mail, send, settled
from tests.test_flow import SUBJECT, only_link
from tests.web_support import PASSWORD, submit

pytest_plugins = ["tests.s3_support"]


@pytest.fixture(params=["files", "s3"])
async def gw(request, tmp_path: Path):
    options = request.getfixturevalue("s3_options") if request.param == "s3" else {}
    async with running(make_settings(tmp_path, **options)) as started:
        yield started


def database_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("clienttrack.db*"))


async def test_new_documents_are_in_the_store_with_nothing_of_them_in_the_database(gw):
    pdf = b"%PDF-1.4\n" + os.urandom(3 * 65536 + 77)
    await send(gw, request_mail(SUBJECT.replace("Blue42", PASSWORD),
                                attachments=[("invoice-1042.pdf", "application/pdf", pdf)]))
    await settled()
    settings = gw.deps.settings
    assert await SealedChunk.all().count() == 0
    files = await SealedFile.all().order_by("position")
    assert [f.filename for f in files] == ["message.txt", "invoice-1042.pdf"] and all(f.blob for f in files)

    stored = b"".join([piece async for piece in gw.deps.blobs.read(files[1].blob)])
    assert len(stored) == 3 * (65536 + 16) + (77 + 9 + 16) and pdf[-64:] not in stored
    if not settings.database_url:
        # Neither the sealed chunks nor the clear file are in the SQLite file (or its WAL).
        in_database = database_bytes(settings.data_dir)
        assert stored[1000:1064] not in in_database and pdf[1000:1064] not in in_database
    on_disk = sorted(p for p in settings.blobs_dir.rglob("*") if p.is_file())
    if settings.blob_url:
        assert on_disk == []
    else:
        assert on_disk == sorted(settings.blobs_dir / f.blob for f in files)
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in on_disk)

    link = only_link(mails_to(gw, "jane@client.example")[0])
    async with httpx.AsyncClient() as http:
        assert (await submit(http, link, PASSWORD)).status_code == 303
        page = await http.get(link)
        assert "your invoice is attached" in page.text
        download = await http.get(f"{link}/files/1")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).digest() == hashlib.sha256(pdf).digest()


async def test_a_deleted_object_reads_as_missing_not_as_something_else(gw):
    await send(gw, request_mail(SUBJECT, attachments=[("a.pdf", "application/pdf", b"%PDF-1.4 a")]))
    await settled()
    request = await PaymentRequest.get()
    file = await SealedFile.get(request=request, position=1)
    await gw.deps.blobs.delete(file.blob)
    with pytest.raises(BlobMissing):
        await sealed.read_all(file, sealed.unlock(request, "Blue42"), gw.deps.blobs)
