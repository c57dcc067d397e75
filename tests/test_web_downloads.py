"""Downloads: streamed, byte for byte, as attachments of an allowed type."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from gateway.core.models import SealedChunk, SealedFile
from tests.web_support import PASSWORD, base_url, make_request, submit
from web.downloads import content_disposition, served_type

pytest_plugins = ["tests.web_fixtures"]


@pytest.mark.parametrize("stored, served", [
    ("application/pdf", "application/pdf"),
    ("Application/PDF; name=x.pdf", "application/pdf"),
    ("image/png", "image/png"),
    ("text/html", "application/octet-stream"),
    ("image/svg+xml", "application/octet-stream"),
    ("application/javascript", "application/octet-stream"),
    ("application/xhtml+xml", "application/octet-stream"),
    ("", "application/octet-stream"),
])
def test_only_allowed_types_are_served_as_themselves(stored, served):
    assert served_type(stored) == served


@pytest.mark.parametrize("name, fallback, encoded", [
    ("invoice-1042.pdf", "invoice-1042.pdf", "invoice-1042.pdf"),
    ("Facture été.pdf", "Facture ete.pdf", "Facture%20%C3%A9t%C3%A9.pdf"),
    ("請求書.pdf", "___.pdf", "%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf"),
    ('a"b;c%d.pdf', "a_b_c_d.pdf", "a%22b%3Bc%25d.pdf"),
    ("../../etc/passwd", "_.._etc_passwd", "_.._etc_passwd"),
    ("bad\r\nname.pdf", "badname.pdf", "badname.pdf"),
])
def test_content_disposition_is_an_attachment_with_rfc_6266_names(name, fallback, encoded):
    assert content_disposition(name) == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


async def test_each_download_is_the_original_bytes_with_safe_headers(clocked):
    big = os.urandom(3 * 65536 + 1234)  # several chunks, the last one short
    files = [("invoice.pdf", "application/pdf", big), ("page.html", "text/html", b"<script>alert(1)</script>"),
             ("Relevé été.csv", "text/csv", "a,b\n1,é\n".encode())]
    made = await make_request(clocked.deps, files=files)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        assert (await http.get(f"{made.path}/files/1")).status_code == 303  # not unlocked yet
        await submit(http, made.path, PASSWORD)
        for position, (name, _, data) in enumerate(files, start=1):
            response = await http.get(f"{made.path}/files/{position}")
            assert response.status_code == 200
            assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(data).hexdigest()
            assert response.headers["content-length"] == str(len(data))
            assert response.headers["content-disposition"].startswith("attachment; ")
            assert response.headers["x-content-type-options"] == "nosniff"
        html = await http.get(f"{made.path}/files/2")
        assert html.headers["content-type"] == "application/octet-stream"
        assert (await http.get(f"{made.path}/files/0")).status_code == 404  # the message is no download
        assert (await http.get(f"{made.path}/files/9")).status_code == 404


async def test_a_tampered_file_breaks_off_instead_of_finishing(clocked):
    data = os.urandom(4 * 65536)
    made = await make_request(clocked.deps, files=[("a.pdf", "application/pdf", data)])
    sealed = await SealedFile.get(request_id=made.request.id, position=1)
    path = clocked.deps.settings.blobs_dir / sealed.blob
    stored = bytearray(path.read_bytes())
    stored[2 * (65536 + 16)] ^= 1  # the first byte of chunk 2
    path.write_bytes(stored)
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        await submit(http, made.path, PASSWORD)
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{made.path}/files/1")


async def test_a_tampered_chunk_row_of_a_file_not_yet_migrated_breaks_off_too(clocked):
    data = os.urandom(4 * 65536)
    made = await make_request(clocked.deps, files=[("a.pdf", "application/pdf", data)], in_database=True)
    sealed = await SealedFile.get(request_id=made.request.id, position=1)
    chunk = await SealedChunk.get(file=sealed, index=2)
    await SealedChunk.filter(id=chunk.id).update(data=bytes([chunk.data[0] ^ 1]) + chunk.data[1:])
    async with httpx.AsyncClient(base_url=base_url(clocked)) as http:
        await submit(http, made.path, PASSWORD)
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{made.path}/files/1")
