"""A large message read by the runner without holding it whole.

Admission stored its body in the blob store (inbound/bodies.py). Here it
is read back a chunk at a time and fed through mail/pieces.py's splitter:
each base64 attachment is decoded, sealed under a fresh data key for the
request it may become, and written to the store as it streams past
(documents/storing.StreamedFile); what is left, the skeleton, is small and
is parsed as the whole message would have been. The request handler then
uses that data key and names the stored files instead of sealing the
attachments again; whatever else the message leads to (a command, a
refusal, a discard), the files are deleted.

A message the splitter cannot follow (Unsplittable) is read whole, as
before: the result is the same, only its memory is not bounded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gateway import vault
from gateway.core.models import InboundMessage
from gateway.deps import Deps
from gateway.documents.storing import StreamedFile
from gateway.inbound import queue as inbound
from gateway.mail.pieces import Splitter, Unsplittable

# The splitter is fed on a thread this much at a time: one hand-off a
# block, and a block's copies (the base64, its decoded bytes, their sealed
# chunks) are what a large message costs in memory at once.
FEED_BYTES = 256 * 1024


@dataclass
class Taken:
    """The skeleton to parse, and the files taken out of the message,
    sealed under ``data_key`` and stored (``elided``: marker -> file)."""

    data_key: bytes
    skeleton: bytes
    elided: dict[str, Any] = field(default_factory=dict)
    files: list[StreamedFile] = field(default_factory=list)

    async def discard(self) -> None:
        for file in self.files:
            await file.discard()
        self.files = []


async def read_large(deps: Deps, queued: InboundMessage, head: bytes) -> Taken | None:
    """The message with its attachments taken out, or None when the
    splitter cannot follow it (then read it whole: read_whole)."""
    data_key = vault.new_data_key()
    files: list[StreamedFile] = []

    def open_part(content_type: str, filename: str | None) -> StreamedFile:
        files.append(StreamedFile(deps.blobs, data_key))
        return files[-1]

    splitter = Splitter(open_part)

    async def feed(block: bytes) -> None:
        await asyncio.to_thread(splitter.feed, block)
        for file in files:
            await file.flush()

    try:
        block, held = [head], len(head)
        async for piece in inbound.open_body(queued, deps.master_key, deps.blobs, len(head)):
            block.append(piece)
            held += len(piece)
            if held >= FEED_BYTES:
                joined, block, held = b"".join(block), [], 0
                await feed(joined)
        if block:
            await feed(b"".join(block))
        split = await asyncio.to_thread(splitter.close)
        for file in files:
            await file.flush()
    except Unsplittable:
        await Taken(data_key, b"", files=files).discard()
        return None
    except BaseException:
        await asyncio.shield(Taken(data_key, b"", files=files).discard())
        raise
    return Taken(data_key, split.skeleton, split.elided, files)


async def read_whole(deps: Deps, queued: InboundMessage, head: bytes) -> bytes:
    body = [piece async for piece in inbound.open_body(queued, deps.master_key, deps.blobs, len(head))]
    return head + b"".join(body)
