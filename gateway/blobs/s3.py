"""The blob store on S3-compatible object storage, through obstore (chosen
over aiobotocore by measurement: BENCHMARKS.md, "Sealed files").

`CLIENTTRACK_BLOB_URL=s3://bucket/prefix?endpoint=https://host:port&region=R`;
credentials from the usual AWS variables, read once into the settings and
passed in here. A PUT is atomic in S3 (the object appears whole when the
request completes), which is the store's first promise; we use one PUT per
object, no multipart, so an interrupted upload leaves no parts behind.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import AsyncIterator, Sequence
from urllib.parse import parse_qs, urlsplit

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store as _Client

from gateway.blobs.store import BlobMissing, BlobStoreError, check_name
from gateway.core.settings import Settings

# Streamed reads come in pieces of at least this much (four sealed chunks).
MIN_PIECE = 4 * (65536 + 16)


class S3Store:
    # Its puts are requests on the event loop (BlobStore.put_all_blocking).
    put_all_blocking = None

    def __init__(self, settings: Settings) -> None:
        url = urlsplit(settings.blob_url)
        options = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.bucket = url.hostname or ""
        self.prefix = url.path.strip("/")
        self.endpoint = options.get("endpoint", "")
        config: dict = {"region": options.get("region") or settings.aws_region or "us-east-1"}
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if settings.aws_access_key_id:
            config["access_key_id"] = settings.aws_access_key_id
        if settings.aws_secret_access_key is not None:
            config["secret_access_key"] = str(settings.aws_secret_access_key)
        if settings.aws_session_token is not None:
            config["token"] = str(settings.aws_session_token)
        self._client = _Client(
            self.bucket,
            prefix=self.prefix or None,
            config=config,
            client_options={
                "allow_http": self.endpoint.startswith("http:"),
                "connect_timeout": timedelta(seconds=5),
                "timeout": timedelta(seconds=120),
            },
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=30)},
        )

    async def make_folders(self, folders: Sequence[str]) -> None:
        return None  # keys, not folders: a PUT makes whatever its name says

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    async def put(self, name: str, pieces: Sequence[bytes]) -> None:
        check_name(name)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        try:
            await obstore.put_async(self._client, name, data, use_multipart=False)
        except (BaseError, OSError) as exc:
            raise BlobStoreError(f"storing {name} failed: {type(exc).__name__}") from exc

    async def put_all(self, objects: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        # The PUTs at once; every one ended before an error is raised, so
        # that the caller's deletions come after any PUT that still succeeds.
        for name, _ in objects:
            check_name(name)
        ended = await asyncio.gather(*(self.put(name, pieces) for name, pieces in objects), return_exceptions=True)
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome

    def writer(self, name: str) -> S3Writer:
        return S3Writer(self, check_name(name))

    async def read(self, name: str, offset: int = 0) -> AsyncIterator[bytes]:
        check_name(name)
        try:
            found = await obstore.get_async(self._client, name, options={"range": {"offset": offset}} if offset else None)
        except FileNotFoundError:
            raise BlobMissing(name) from None
        except (BaseError, OSError) as exc:
            raise BlobStoreError(f"reading {name} failed: {type(exc).__name__}") from exc
        async for piece in found.stream(min_chunk_size=MIN_PIECE):
            yield bytes(piece)

    async def listed(self) -> AsyncIterator[list[tuple[str, float]]]:
        """A listing's page a batch; an object's time its Last-Modified
        (when its PUT stored it, by the storage's clock)."""
        try:
            async for page in obstore.list(self._client, chunk_size=1000):
                yield [(meta["path"], meta["last_modified"].timestamp()) for meta in page]
        except (BaseError, OSError) as exc:
            raise BlobStoreError(f"listing the objects failed: {type(exc).__name__}") from exc

    async def delete(self, name: str) -> None:
        check_name(name)
        try:
            await obstore.delete_async(self._client, name)
        except FileNotFoundError:
            pass
        except (BaseError, OSError) as exc:
            raise BlobStoreError(f"deleting {name} failed: {type(exc).__name__}") from exc

    async def tidy(self) -> None:
        pass  # one PUT per object: an interrupted upload leaves nothing

    async def close(self) -> None:
        pass


class S3Writer:
    """An object gathered in memory and stored with one PUT at close: S3
    keeps no half object that way and an abort leaves no parts behind, at
    the cost of holding the object once (a multipart upload would not; the
    file store writes as it goes)."""

    def __init__(self, store: S3Store, name: str) -> None:
        self.store, self.name = store, name
        self._pieces: list[bytes] = []

    async def write(self, pieces: Sequence[bytes]) -> None:
        self._pieces.extend(pieces)

    async def close(self) -> None:
        pieces, self._pieces = self._pieces, []
        await self.store.put(self.name, pieces or [b""])

    async def abort(self) -> None:
        self._pieces = []
