"""The data directory is private: 0700, every file 0600, whatever the umask;
a wider mode found at start stops the gateway, naming the path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway import cli
from gateway.core import datadir
from gateway.service import running
from tests.conftest import make_settings, request_mail, send, settled


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_a_new_data_directory_and_its_files_are_private_whatever_the_umask(tmp_path, open_umask):
    settings = make_settings(tmp_path)
    async with running(settings) as gw:
        await send(gw, request_mail("Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42"))
        await settled()
    assert mode(settings.data_dir) == 0o700
    files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    on_sqlite = {"clienttrack.db"} if settings.database.startswith("sqlite") else set()  # else PostgreSQL's
    assert {"master.key", *on_sqlite} <= names and any(n.endswith(".eml") for n in names)
    assert {str(p.relative_to(settings.data_dir)): mode(p) for p in files} == {
        str(p.relative_to(settings.data_dir)): 0o600 for p in files}


def test_the_command_line_makes_it_private_too(tmp_path, open_umask, capsys):
    data = tmp_path / "data"
    assert cli.main(["firm", "add", "firm.example", "--name", "Firm", "--data-dir", str(data)]) == 0
    assert mode(data) == 0o700 and mode(data / "clienttrack.db") == 0o600


async def test_a_data_directory_open_to_others_stops_the_start(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir()
    os.chmod(settings.data_dir, 0o755)
    with pytest.raises(datadir.DataDirError, match=f"{settings.data_dir} has mode 0755.*chmod 700"):
        async with running(settings):
            pass
    assert not (settings.data_dir / "clienttrack.db").exists()


@pytest.mark.parametrize("name", ["clienttrack.db", "outbox/new/1.eml", "clienttrack.db-wal"])
async def test_a_file_open_to_others_stops_the_start(tmp_path, name):
    settings = make_settings(tmp_path)
    async with running(settings):
        pass
    path = settings.data_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.chmod(path, 0o644)
    with pytest.raises(datadir.DataDirError, match=f"{path} has mode 0644.*chmod 600"):
        async with running(settings):
            pass


def test_the_command_line_names_the_path_and_fails(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "clienttrack.db").touch()
    os.chmod(data / "clienttrack.db", 0o640)
    assert cli.main(["firm", "list", "--data-dir", str(data)]) == 2
    assert f"{data / 'clienttrack.db'} has mode 0640" in capsys.readouterr().err


def test_sqlite_path():
    assert datadir.sqlite_path("sqlite:///var/lib/ct/clienttrack.db") == "/var/lib/ct/clienttrack.db"
    assert datadir.sqlite_path("sqlite://data/ct.db?synchronous=FULL") == "data/ct.db"
    assert datadir.sqlite_path("sqlite://:memory:") is None
    assert datadir.sqlite_path("postgres://ct@db/ct") is None
