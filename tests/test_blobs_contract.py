"""The blob store's contract, run against both stores: files under a
temporary DATA_DIR/blobs/, and S3 through moto's server on loopback."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import time
from pathlib import Path

import pytest

from gateway.blobs import BlobMissing, BlobStore, open_store
from gateway.blobs.files import TEMP_PREFIX, FileStore
from gateway.blobs.s3 import S3Store
from gateway.documents import storing
from tests.conftest import make_settings

pytest_plugins = ["tests.s3_support"]

MB = 1024 * 1024


def new_name() -> str:
    """A name shaped like the ones the gateway gives (storing.name_for)."""
    token = secrets.token_hex(16)
    return f"f/{token[:2]}/{token}"


@pytest.fixture(params=["files", "s3"])
async def store(request, tmp_path: Path):
    options = request.getfixturevalue("s3_options") if request.param == "s3" else {}
    made = open_store(make_settings(tmp_path, **options))
    yield made
    await made.close()


async def read(store: BlobStore, name: str, offset: int = 0) -> bytes:
    return b"".join([piece async for piece in store.read(name, offset)])


async def test_what_is_put_reads_back_whole_and_from_an_offset(store: BlobStore) -> None:
    name = new_name()
    pieces = [b"first piece|", b"", b"second|", os.urandom(300_000)]
    await store.put(name, pieces)
    whole = b"".join(pieces)
    assert await read(store, name) == whole
    assert await read(store, name, 12) == whole[12:]
    assert await read(store, name, 200_001) == whole[200_001:]


async def test_a_25_mb_file_round_trips(store: BlobStore) -> None:
    name = new_name()
    data = os.urandom(25 * MB)
    chunks = [data[i:i + 65552] for i in range(0, len(data), 65552)]
    await store.put(name, chunks)
    back = bytearray()
    pieces = 0
    async for piece in store.read(name):
        back += piece
        pieces += 1
    assert back == data
    assert pieces > 10, "read streams in pieces, not the whole object at once"


async def test_an_empty_object(store: BlobStore) -> None:
    name = new_name()
    await store.put(name, [b""])
    assert await read(store, name) == b""


async def test_objects_put_all_at_once_each_read_back(store: BlobStore) -> None:
    objects = [(new_name(), [b"the text"]), (new_name(), [os.urandom(100_000), b"tail"]), (new_name(), [b""])]
    await store.put_all(objects)
    for name, pieces in objects:
        assert await read(store, name) == b"".join(pieces)


async def test_files_put_together_are_all_stored_or_none(store: BlobStore) -> None:
    """A request's files (storing.put_items, one put_all): when one cannot
    be stored, none of them is left in the store."""
    def item(chunks) -> storing.SealedItem:
        return storing.SealedItem("f.pdf", "application/pdf", 1, os.urandom(16), chunks)

    class Failing(list):
        def __iter__(self):
            raise OSError("disk full")

    items = [item([b"the text"]), item([os.urandom(1000)]), item(Failing([b"x", b"y"])), item([b"after"])]
    with pytest.raises(OSError):
        await storing.put_items(store, items)
    for name in storing.names_for([made.salt for made in items]):
        with pytest.raises(BlobMissing):
            await read(store, name)
    stored = await storing.put_items(store, items[:2])
    assert [await read(store, s.blob) for s in stored] == [b"the text", items[1].chunks[0]]


async def test_a_requests_files_are_named_into_one_folder_each_under_a_name_of_its_own(store: BlobStore) -> None:
    """storing.put_items names a request's files into the first one's folder
    (the file store then flushes that folder once for all of them)."""
    items = [storing.SealedItem(f"f{n}.pdf", "application/pdf", 1, os.urandom(16), [bytes([n])]) for n in range(3)]
    stored = await storing.put_items(store, items)
    names = [s.blob for s in stored]
    assert names[0] == storing.name_for(items[0].salt)
    assert len({name.rpartition("/")[0] for name in names}) == 1 and len(set(names)) == 3
    assert [name.rpartition("/")[2] for name in names] == \
        [storing.name_for(item.salt).rpartition("/")[2] for item in items]
    assert [await read(store, name) for name in names] == [b"\0", b"\1", b"\2"]


async def test_objects_go_into_the_folders_made_ahead_of_them(store: BlobStore) -> None:
    await store.make_folders(storing.folders())
    names = [new_name() for _ in range(3)]
    await store.put_all([(name, [name.encode()]) for name in names])
    assert [await read(store, name) for name in names] == [name.encode() for name in names]


async def test_unknown_and_deleted_names_are_missing(store: BlobStore) -> None:
    with pytest.raises(BlobMissing):
        await read(store, new_name())
    name = new_name()
    await store.put(name, [b"sealed"])
    await store.delete(name)
    with pytest.raises(BlobMissing):
        await read(store, name)
    await store.delete(name)  # again: no error, so an interrupted deletion can be redone


async def test_names_are_separate(store: BlobStore) -> None:
    names = [new_name() for _ in range(3)]
    for i, name in enumerate(names):
        await store.put(name, [bytes([i]) * 10])
    await store.delete(names[1])
    assert await read(store, names[0]) == b"\0" * 10
    assert await read(store, names[2]) == b"\2" * 10


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/../../b", "UPPER", "a//b", "", "a/b/c/d/e"])
async def test_names_that_could_leave_the_store_are_refused(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError):
        await store.put(name, [b"x"])
    with pytest.raises(ValueError):
        await read(store, name)


def test_describe_names_no_credentials(tmp_path: Path, s3_options: dict) -> None:
    described = open_store(make_settings(tmp_path, **s3_options)).describe()
    assert described.startswith("s3://test-") and "test-secret" not in described and "test-key" not in described


# -- the file store's own promises -----------------------------------------------------


async def test_files_are_private_and_under_data_dir_blobs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(mode=0o700)
    store = open_store(settings)
    name = new_name()
    await store.put(name, [b"sealed bytes"])
    path = settings.data_dir / "blobs" / name
    assert path.read_bytes() == b"sealed bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    folder = path.parent
    while folder != settings.data_dir:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        folder = folder.parent


async def test_the_start_check_leaves_the_sealed_files_unwalked(tmp_path: Path) -> None:
    # One stat per document ever kept at every start would not scale; the
    # store makes its own files 0600 in 0700 folders (tested above).
    from gateway.core import datadir

    settings = make_settings(tmp_path)
    datadir.prepare(settings.data_dir, settings.database)
    await open_store(settings).put(new_name(), [b"sealed"])
    loose = settings.blobs_dir / "f" / "00" / "x"
    loose.parent.mkdir(parents=True, exist_ok=True)  # the object's own folder is f/00 once in 256
    loose.write_bytes(b"")
    os.chmod(loose, 0o644)
    datadir.check(settings.data_dir)


async def test_a_write_that_fails_half_way_leaves_nothing_under_the_name(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "blobs")
    name = new_name()

    def pieces():
        yield b"half of it"
        raise OSError("disk full")

    class Failing(list):
        def __iter__(self):
            return pieces()

    with pytest.raises(OSError):
        await store.put(name, Failing())
    with pytest.raises(BlobMissing):
        await read(store, name)
    assert not [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()], "no temporary file left either"


def watch_flushes(monkeypatch) -> list[tuple[str, str]]:
    """The file system steps of the file store, in order: ("fsync", what)
    and ("rename", to what), with paths as the kernel names them."""
    steps: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(source, target) -> None:
        real_rename(source, target)
        steps.append(("rename", str(target)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    return steps


async def test_files_put_together_are_flushed_before_any_is_renamed_and_their_folder_once(
        tmp_path: Path, monkeypatch) -> None:
    """After a crash a name holds the whole object or nothing: each file's
    bytes are flushed before its rename, and the folder after the renames
    (before put_all returns). Files in one folder (a request's) flush it
    once: three fsyncs for two files, not four."""
    store = FileStore(tmp_path / "blobs")
    first = new_name()
    second, earlier = (f"{first.rpartition('/')[0]}/{secrets.token_hex(16)}" for _ in range(2))
    await store.put(earlier, [b"an earlier request's (it made the folder)"])
    steps = watch_flushes(monkeypatch)
    await store.put_all([(first, [b"the text"]), (second, [b"the pdf"])])
    folder = str(store.root / first.rpartition("/")[0])
    assert [kind for kind, _ in steps] == ["fsync", "fsync", "rename", "rename", "fsync"]
    assert [Path(what).parent for _, what in steps[:2]] == [Path(folder)] * 2
    assert steps[2:] == [("rename", str(store.root / first)), ("rename", str(store.root / second)),
                         ("fsync", folder)]
    assert (await read(store, first), await read(store, second)) == (b"the text", b"the pdf")


async def test_files_put_together_whose_flush_fails_leave_no_name_and_no_temporary_file(
        tmp_path: Path, monkeypatch) -> None:
    store = FileStore(tmp_path / "blobs")
    first = new_name()
    names = [first, f"{first.rpartition('/')[0]}/{secrets.token_hex(16)}", new_name()]
    real_fsync = os.fsync
    flushed = []

    def fsync(fd: int) -> None:
        flushed.append(fd)
        if len(flushed) == 2:
            raise OSError("I/O error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        await store.put_all([(name, [b"sealed"]) for name in names])
    for name in names:
        with pytest.raises(BlobMissing):
            await read(store, name)
    assert not [p for p in store.root.rglob("*") if p.is_file()], "no temporary file left either"


async def test_files_put_together_whose_rename_fails_leave_none_of_them(tmp_path: Path, monkeypatch) -> None:
    """A rename that fails after others took takes them back: put_all
    (and put_all_blocking, which a request's crypto hand-off calls with no
    put_items around it to delete what stayed) leaves all or none."""
    store = FileStore(tmp_path / "blobs")
    first = new_name()
    names = [first, f"{first.rpartition('/')[0]}/{secrets.token_hex(16)}", new_name()]
    real_rename = os.rename

    def rename(source, target) -> None:
        if str(target).endswith(names[1]):
            raise OSError("I/O error")
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        store.put_all_blocking([(name, [b"sealed"]) for name in names])
    for name in names:
        with pytest.raises(BlobMissing):
            await read(store, name)
    assert not [p for p in store.root.rglob("*") if p.is_file()], "no temporary file left either"


async def test_items_put_from_a_thread_are_all_stored_or_none(store: BlobStore) -> None:
    """storing.put_items_blocking (a request's crypto hand-off) where the
    store can put without the event loop (the file store; S3 cannot, and
    says so: its files are then given to put_items)."""
    if store.put_all_blocking is None:
        assert isinstance(store, S3Store)
        return

    class Failing(list):
        def __iter__(self):
            raise OSError("disk full")

    items = [storing.SealedItem("f.pdf", "application/pdf", 1, os.urandom(16), chunks)
             for chunks in ([b"the text"], [os.urandom(1000)], Failing([b"x"]))]
    with pytest.raises(OSError):
        await asyncio.to_thread(storing.put_items_blocking, store, items)
    for name in storing.names_for([made.salt for made in items]):
        with pytest.raises(BlobMissing):
            await read(store, name)
    stored = await asyncio.to_thread(storing.put_items_blocking, store, items[:2])
    assert [s.blob for s in stored] == storing.names_for([made.salt for made in items[:2]])
    assert [await read(store, s.blob) for s in stored] == [b"the text", items[1].chunks[0]]


async def test_temporary_files_of_a_crash_are_swept_but_objects_never(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "blobs")
    name = new_name()
    await store.put(name, [b"kept"])
    crashed = (tmp_path / "blobs" / name).with_name(f"{TEMP_PREFIX}left-by-a-crash")
    crashed.write_bytes(b"half")
    os.utime(crashed, (0, 0))
    assert store.sweep_temporary() == 1
    assert not crashed.exists()
    assert await read(store, name) == b"kept"


async def test_a_writer_stores_its_pieces_only_once_closed(store: BlobStore) -> None:
    name = new_name()
    data = os.urandom(3 * MB + 17)
    writer = store.writer(name)
    for start in range(0, len(data), 65552):
        await writer.write([data[start:start + 65552]])
        if start == 2 * 65552:
            with pytest.raises(BlobMissing):
                await read(store, name)
    await writer.close()
    assert await read(store, name) == data


async def test_an_aborted_writer_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    name = new_name()
    writer = store.writer(name)
    await writer.write([os.urandom(2 * MB)])  # past one batch: a file store has begun its file
    await writer.abort()
    with pytest.raises(BlobMissing):
        await read(store, name)
    if isinstance(store, FileStore):
        assert not [p for p in store.root.rglob("*") if p.is_file()]


async def test_a_writer_given_nothing_stores_an_empty_object(store: BlobStore) -> None:
    name = new_name()
    writer = store.writer(name)
    await writer.close()
    assert await read(store, name) == b""


async def test_the_listing_names_every_object_with_when_it_was_written_and_no_write_under_way(
        store: BlobStore) -> None:
    before = time.time() - 5  # S3 keeps whole seconds, by the storage's clock
    names = {new_name() for _ in range(3)} | {"inbound/0123456789abcdef"}
    await store.put_all([(name, [b"sealed"]) for name in names])
    if isinstance(store, FileStore):  # a write under way, as the file store has it
        (store.root / next(iter(names))).with_name(f"{TEMP_PREFIX}under-way").write_bytes(b"half")
    listed = [entry async for batch in store.listed() for entry in batch]
    assert {name for name, _ in listed} == names
    assert all(before <= written <= time.time() + 5 for _, written in listed)
