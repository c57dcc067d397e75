"""Where sealed files live: the blob store (gateway/blobs/store.py says
what every store promises). Files under DATA_DIR/blobs/ by default,
S3-compatible object storage when CLIENTTRACK_BLOB_URL says s3://."""

from __future__ import annotations

from gateway.blobs.store import BlobMissing, BlobStore, BlobStoreError
from gateway.core.settings import Settings

__all__ = ["BlobMissing", "BlobStore", "BlobStoreError", "open_store"]


def open_store(settings: Settings) -> BlobStore:
    """The store the settings name (the S3 client is imported only then)."""
    if settings.blob_url:
        from gateway.blobs.s3 import S3Store

        return S3Store(settings)
    from gateway.blobs.files import FileStore

    return FileStore(settings.blobs_dir)
