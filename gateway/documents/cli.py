"""The command line for documents: `clienttrack blobs migrate` and
`clienttrack firm retention DOMAIN --documents 90d`."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from gateway.blobs import open_store
from gateway.core import db, directory
from gateway.core.clock import system_clock
from gateway.documents import migrate, retention


def add_parsers(commands, firm, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `blobs migrate` among the commands and `retention` among the firm's actions."""
    blobs = commands.add_parser("blobs", help="where sealed files are kept").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    move = blobs.add_parser("migrate", help="move sealed files from the database into the blob store "
                                            "(DATA_DIR/blobs/ or CLIENTTRACK_BLOB_URL); safe while serving, resumable")
    common(move)
    move.add_argument("--batch", type=int, default=20, help="files looked up at a time (default 20)")
    move.set_defaults(run=cmd_blobs_migrate)

    keep = firm.add_parser("retention", help="how long documents are kept after a request is paid, cancelled "
                                             "or expired (default 90d)")
    common(keep)
    keep.add_argument("domain")
    keep.add_argument("--documents", metavar="Nd", help="e.g. 90d; without it, show the current period")
    keep.set_defaults(run=cmd_firm_retention)


def cmd_blobs_migrate(args: argparse.Namespace, settings) -> int:
    store = open_store(settings)

    async def work() -> int:
        total = await migrate.left_to_move()
        print(f"Moving sealed files from the database to {store.describe()}: {total} to go.", file=sys.stderr)
        moved = await migrate.migrate(store, batch=max(1, args.batch), progress=_progress(total))
        await store.close()
        if sys.stderr.isatty():
            print(file=sys.stderr)  # end the progress line
        print(f"Moved {moved.files} files ({moved.bytes / 1e6:.1f} MB); their rows are deleted.")
        if moved.damaged:
            print(f"Left in the database, their chunk rows incomplete: sealed files {moved.damaged}.",
                  file=sys.stderr)
            return 1
        return 0

    return db.run(settings, work)


def _progress(total: int) -> Callable[[migrate.Moved], None]:
    """A line on standard error now and then: a terminal's is rewritten in
    place; a log's gets one every 1,000 files."""
    on_terminal = sys.stderr.isatty()

    def show(moved: migrate.Moved) -> None:
        done = moved.files + len(moved.damaged)
        if on_terminal or done % 1000 == 0:
            line = f"{done} of {total} files, {moved.bytes / 1e6:.1f} MB moved"
            print("\r" + line if on_terminal else line, end="" if on_terminal else "\n", file=sys.stderr, flush=True)

    return show


def cmd_firm_retention(args: argparse.Namespace, settings) -> int:
    try:
        days = retention.parse_days(args.documents) if args.documents is not None else None
    except retention.RetentionError as exc:
        print(f"clienttrack: --documents: {exc}", file=sys.stderr)
        return 2

    async def work() -> int:
        firm = await directory.get_firm(args.domain)
        if days is not None:
            await retention.set_days(firm, days, system_clock(), actor="cli")
        print(f"{firm.domain}: documents are deleted {firm.retention_days} days after a request is paid, "
              "cancelled or expired.")
        return 0

    return db.run(settings, work)
