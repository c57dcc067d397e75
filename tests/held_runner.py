"""A queue runner in a process of its own, held at one point for a test
(tests/test_blob_orphans.py): it claims the next queued message, says
"claimed" on stdout and waits for a line on stdin; then it processes the
message as the service's runner does and says "done". Between the two the
test can take the write turn, so that the runner stops after its put and
before its commit, and kill it there (kill -9) or let it go on.

Run as ``python -m tests.held_runner SETTINGS_JSON`` (settings.load's options)."""

from __future__ import annotations

import asyncio
import json
import sys

from gateway import vault
from gateway.core import db
from gateway.core.clock import system_clock
from gateway.core.paths import TEMPLATES_DIR
from gateway.core.settings import load
from gateway.deps import Deps
from gateway.inbound import queue as inbound
from gateway.inbound.runner import QueueRunner
from gateway.outbound.compose import Composer


async def main(options: dict) -> None:
    settings = load(options, environ={})
    master_key = vault.load_or_create_master_key(settings.master_key_path)
    async with db.opened(settings.database):
        deps = Deps(settings, master_key, system_clock, Composer(TEMPLATES_DIR / "email", hostname="gw.test"))
        runner = QueueRunner(deps)
        claimed = await inbound.claim(deps.clock(), runner.lease, runner.owner)
        assert claimed is not None, "nothing queued"
        print("claimed", claimed.id, flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await runner.process(claimed)
        print("done", flush=True)
        await deps.blobs.close()
        deps.crypto_pool.shutdown()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
