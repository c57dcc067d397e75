"""A decrypted attachment, streamed to the browser a chunk at a time.

The content type was chosen by whoever sent the mail, so it is served only
if it is on a short list of document types; anything else (HTML, SVG,
scripts) goes out as application/octet-stream. Every file is an
attachment (never shown inline) and nosniff stops the browser guessing.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import AsyncIterator
from urllib.parse import quote

from starlette.responses import StreamingResponse

from gateway import vault
from gateway.blobs import BlobMissing, BlobStore, BlobStoreError
from gateway.core.models import SealedFile
from gateway.vault import sealed

log = logging.getLogger("clienttrack.web.downloads")

FALLBACK_TYPE = "application/octet-stream"
ALLOWED_TYPES = frozenset({
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/x-qw",  # Quicken
    "application/vnd.intu.qbo",
})


def served_type(stored: str) -> str:
    """The stored type without parameters, if allowed; else octet-stream."""
    kind = stored.split(";", 1)[0].strip().lower()
    return kind if kind in ALLOWED_TYPES else FALLBACK_TYPE


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the
    real name as RFC 6266 / RFC 8187 ``filename*``."""
    name = "".join(c for c in filename if unicodedata.category(c)[0] != "C").replace("/", "_").replace("\\", "_")
    name = name.strip(" .") or "download"
    # Old clients get the name with accents dropped and other non-ASCII
    # letters (and the characters that would end the quoted value) as "_".
    decomposed = (c for c in unicodedata.normalize("NFKD", name) if unicodedata.category(c) != "Mn")
    ascii_name = "".join("_" if ord(c) > 126 or c in '"%;\\' else c for c in decomposed)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _plaintext(file: SealedFile, data_key: bytes, store: BlobStore) -> AsyncIterator[bytes]:
    try:
        async for chunk in sealed.stream(file, data_key, store):
            yield chunk
    except vault.TamperedError:
        # Raising again makes the server cut the connection short of the
        # Content-Length, so the browser reports a failed download rather
        # than keeping a truncated file.
        log.error("sealed file %s failed authentication while streaming", file.id)
        raise
    except (BlobMissing, BlobStoreError) as exc:
        log.error("sealed file %s could not be read from the blob store: %s", file.id, type(exc).__name__)
        raise


def response(file: SealedFile, data_key: bytes, store: BlobStore) -> StreamingResponse:
    return StreamingResponse(
        _plaintext(file, data_key, store),
        media_type=served_type(file.content_type),
        headers={
            "content-disposition": content_disposition(file.filename),
            "content-length": str(file.size),
            "x-content-type-options": "nosniff",
        },
    )
