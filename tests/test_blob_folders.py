"""The file store's fan-out folders are made before anything serves, by
whoever starts the deployment (prepare() for the workers of `serve`, or
the one process running alone): no request's put makes a folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gateway.blobs.files import FileStore
from gateway.documents import storing
from gateway.service import prepare, running
from tests.conftest import make_settings, mails_to, request_mail, send, settled
from tests.test_flow import PDF, SUBJECT


def folders_under(root: Path) -> set[Path]:
    return {Path(folder) for folder, _, _ in os.walk(root)}


def fan_out(root: Path) -> list[str]:
    return sorted(os.listdir(root / "f"))


async def test_the_store_makes_every_fan_out_folder_private_and_a_put_then_makes_none(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "data" / "blobs")
    await store.make_folders(storing.folders())
    assert fan_out(store.root) == [f"{index:02x}" for index in range(256)]
    assert {stat.S_IMODE(folder.stat().st_mode) for folder in folders_under(store.root)} == {0o700}
    made = folders_under(store.root)
    salts = [os.urandom(16) for _ in range(2)]
    names = storing.names_for(salts)
    await store.put_all([(name, [b"sealed"]) for name in names])
    assert folders_under(store.root) == made
    assert [(store.root / name).read_bytes() for name in names] == [b"sealed", b"sealed"]
    await store.make_folders(storing.folders())  # again (the next start): nothing changes
    assert folders_under(store.root) == made


async def test_prepare_makes_the_folders_for_the_workers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    await prepare(settings)
    assert len(fan_out(settings.blobs_dir)) == 256


async def test_a_request_into_a_fresh_gateway_makes_no_folder(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as gw:
        blobs = gw.deps.settings.blobs_dir
        assert len(fan_out(blobs)) == 256
        made = folders_under(blobs)
        await send(gw, request_mail(SUBJECT, attachments=[("invoice-1042.pdf", "application/pdf", PDF)]))
        await settled()
        assert len(mails_to(gw, "jane@client.example")) == 1
        assert folders_under(blobs) == made
        assert sum(len(files) for _, _, files in os.walk(blobs)) == 2  # the request's text and its PDF
