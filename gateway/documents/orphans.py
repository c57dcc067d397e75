"""Sealed objects no row names, swept from the blob store once they are
older than GRACE.

A request's files (and a client's reply's, and a large message's body)
are put into the store before the transaction that commits the rows
naming them (documents/storing.py, inbound/bodies.py), so that no
transaction waits on an upload. A process killed, or a power cut, between
the put and the commit leaves objects that no row names; so does a write
that fails after its put (a COMMIT that failed on the way back may still
have happened, so the writer leaves its objects alone). They cannot be
opened (their data key was wrapped only in rows never committed), but
documents are kept only as long as needed: this sweep deletes them.

Mark and sweep, in that order: the store is listed first, and only the
objects last written before ``now - GRACE`` are candidates; the rows are
read after the listing, so a row committed before that read is seen. A
row committed after it names an object put shortly before, never one a
day old: between a put and its commit there is only the write, whose wait
for the write turn is bounded (core/writeturns.py: the step fails and its
objects are left to this sweep), and a runner's commit needs its lease,
which a process that stopped answering loses to another runner within
seconds (inbound/queue.py FINISH). A day is far beyond both, and beyond
any clock difference between the hosts and the storage (S3's
Last-Modified is the storage's clock).

Only names the gateway gives are swept (storing.name_for's, a large
message's body's): anything else under the store's root is left alone.
A file that rows still hold as chunks (before `blobs migrate`) counts its
object, storing.name_for(salt), as named: migrate may be about to name it.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import timedelta

from gateway.blobs import BlobStore
from gateway.core.models import InboundMessage, SealedFile
from gateway.documents.storing import name_for

log = logging.getLogger("clienttrack.orphans")

GRACE = timedelta(days=1)
# Rows read a query: the sealed files are read by id, a page at a time.
PAGE = 5000
# The names the gateway gives: storing.names_for's, inbound/bodies.blob_name's.
_OURS = re.compile(r"f/[0-9a-f]{2}/[0-9a-f]{32}|inbound/[0-9a-f]{16}")


async def sweep(store: BlobStore, grace: timedelta = GRACE, now: float | None = None) -> int:
    """Delete the objects written more than ``grace`` before ``now`` (seconds
    since the epoch; the time now unless given) that no row names; how
    many went. The time is the machine's, not the gateway's clock: what is
    measured is how long ago a put happened, as the store's times say.
    Holds the candidates' names meanwhile (about 100 bytes an object
    older than ``grace``)."""
    cutoff = (time.time() if now is None else now) - grace.total_seconds()
    candidates: set[str] = set()
    async for batch in store.listed():
        candidates.update(name for name, written in batch if written < cutoff and _OURS.fullmatch(name))
    if not candidates:
        return 0
    # Read after the listing (the module's docstring says why that order).
    after = 0
    while candidates:
        page = await SealedFile.filter(id__gt=after).order_by("id").limit(PAGE) \
            .values_list("id", "blob", "file_salt")
        if not page:
            break
        for row_id, blob, salt in page:
            candidates.discard(blob or name_for(bytes(salt)))
        after = page[-1][0]
    candidates.difference_update(await InboundMessage.exclude(body_blob="").values_list("body_blob", flat=True))
    for name in sorted(candidates):
        await store.delete(name)
    if candidates:
        log.info("%d sealed objects that no row names (left by a crash or a failed write) deleted from %s",
                    len(candidates), store.describe())
    return len(candidates)
