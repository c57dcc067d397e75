"""Schema versions with Tortoise's migrations (gateway/migrations/), on the
run's database: a new database is made at the latest migration, one that
is behind is refused by name, and `clienttrack db upgrade` brings it up to
date keeping every row."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import pytest
from tortoise import connections

from gateway import cli
from gateway.core import db, schema
from gateway.service import running
from tests.conftest import database_url, make_settings, request_mail, send, settled

PRODUCT = Path(schema.__file__).resolve().parents[1] / "migrations"
LATER_MIGRATION = Path(__file__).resolve().parent / "data" / "migration_firm_vat_number.py"


@pytest.fixture
def later(tmp_path, monkeypatch) -> str:
    """The product's migrations and one more after them (firm.vat_number,
    filled in), as a package of their own; its name, for schema.MIGRATIONS."""
    package = tmp_path / "later_migrations"
    shutil.copytree(PRODUCT, package, ignore=shutil.ignore_patterns("__pycache__"))
    last = max(path.stem for path in PRODUCT.glob("[0-9][0-9][0-9][0-9]_*.py"))
    number = int(last[:4]) + 1
    source = LATER_MIGRATION.read_text().replace("LAST_MIGRATION", last)
    (package / f"{number:04d}_firm_vat_number.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "later_migrations", raising=False)
    return f"{number:04d}_firm_vat_number"


async def test_the_migrations_describe_the_models_as_they_are():
    # A model changed without its migration fails here: `clienttrack db makemigrations --name WHAT`.
    changes = [operation.describe() for writer in await schema.model_changes() for operation in writer.operations]
    assert changes == []


async def test_a_new_database_is_made_as_replaying_the_migrations_would_make_it(tmp_path):
    # A new database is made in one step (the models' tables); later
    # migrations run on databases made either way, so both must match.
    (tmp_path / "made").mkdir()
    (tmp_path / "replayed").mkdir()
    made, replayed = database_url(tmp_path / "made"), database_url(tmp_path / "replayed")
    async with db.opened(made):
        made_schema = await _schema()
        assert (await schema.version()).applied[0] == "0001_initial"
    async with db.connected(replayed):
        await schema._executor().migrate()
        replayed_schema = await _schema()
    assert made_schema == replayed_schema
    assert "payment_request" in made_schema


def test_a_database_behind_is_refused_by_name_then_upgraded_keeping_every_row(tmp_path, monkeypatch, capsys, later):
    settings = make_settings(tmp_path)
    database = ["--data-dir", str(settings.data_dir), "--database-url", settings.database]

    async def fill() -> dict[str, list]:
        async with running(settings) as gw:
            await send(gw, request_mail("Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 +fee"))
            await send(gw, request_mail("status"))
            await settled()
            return await _rows()

    before = asyncio.run(fill())  # at the latest migration, with a request, its files, mail, events...
    assert len(before["payment_request"]) == 1 and len(before["outbound_message"]) >= 3

    monkeypatch.setattr(schema, "MIGRATIONS", "later_migrations")  # this code now needs one more
    assert cli.main(["requests", "list", *database]) == 1
    assert "run `clienttrack db upgrade` first" in capsys.readouterr().err
    with pytest.raises(schema.SchemaBehind, match="clienttrack db upgrade"):
        asyncio.run(_serve_briefly(settings))

    assert cli.main(["db", "upgrade", *database]) == 0
    assert capsys.readouterr().out == f"Applied {later}\n"

    async def read() -> tuple[dict[str, list], list]:
        async with db.opened(settings.database):
            _, firms = await connections.get("default").execute_query("SELECT domain, vat_number FROM firm")
            return await _rows(), [tuple(firm) for firm in firms]

    after, firms = asyncio.run(read())
    assert after == {**before, "firm": after["firm"]}  # every row of every table as it was...
    assert [row[:-1] for row in after["firm"]] == before["firm"]  # ...the firms with one column more
    assert firms == [("demo.localhost", "VAT-demo.localhost")]  # filled in by the migration
    assert cli.main(["requests", "list", *database]) == 0
    assert "jane@client.example" in capsys.readouterr().out


async def test_two_upgrades_at_once_apply_a_migration_once(tmp_path, monkeypatch, later):
    url = database_url(tmp_path)
    async with db.opened(url):
        pass
    monkeypatch.setattr(schema, "MIGRATIONS", "later_migrations")
    async with db.connected(url):
        one, two = await asyncio.gather(schema.upgrade(url), schema.upgrade(url))
        assert sorted([one, two]) == [[], [later]]
        assert (await schema.version()).pending == ()


async def test_an_empty_database_is_made_but_upgrading_on_start_is_a_setting(tmp_path, monkeypatch, later):
    url = database_url(tmp_path)
    async with db.opened(url):
        pass
    monkeypatch.setattr(schema, "MIGRATIONS", "later_migrations")
    with pytest.raises(schema.SchemaBehind, match="CLIENTTRACK_UPGRADE_ON_START"):
        async with db.opened(url):
            pass
    async with db.opened(url, upgrade_on_start=True):
        current = await schema.version()
        assert current.pending == () and current.applied[-1] == later


def test_the_upgrade_setting_is_read_from_the_environment(tmp_path):
    from gateway.core import settings as settings_module
    assert settings_module.load({}, environ={"CLIENTTRACK_UPGRADE_ON_START": "true"}).upgrade_on_start is True
    assert settings_module.load({}, environ={}).upgrade_on_start is False


async def _serve_briefly(settings) -> None:
    async with running(settings):
        pass


async def _rows() -> dict[str, list]:
    """Every row of every table of ours, in a stable order."""
    connection = connections.get("default")
    rows = {}
    for table in await _tables():
        _, found = await connection.execute_query(f'SELECT * FROM "{table}"')
        rows[table] = sorted((tuple(row) for row in found), key=repr)
    return rows


async def _tables() -> list[str]:
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    _, found = await connection.execute_query(sql)
    return sorted(row[0] for row in found if row[0] != schema.RECORD_TABLE)


async def _schema() -> dict[str, list]:
    """Each table's columns and indexes as the database describes them."""
    connection = connections.get("default")
    described: dict[str, list] = {}
    for table in await _tables():
        if connection.capabilities.dialect == "sqlite":
            _, columns = await connection.execute_query(f'PRAGMA table_info("{table}")')
            _, indexes = await connection.execute_query(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", [table])
            _, unique = await connection.execute_query(f'PRAGMA index_list("{table}")')
            # Without each column's position: a column a migration adds comes last.
            described[table] = [sorted(tuple(c)[1:] for c in columns), sorted(_squeeze(i[0]) for i in indexes),
                                sorted((u[2], u[3]) for u in unique)]
        else:
            _, columns = await connection.execute_query(
                "SELECT column_name, data_type, is_nullable, column_default, character_maximum_length "
                "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1", [table])
            _, indexes = await connection.execute_query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1", [table])
            _, constraints = await connection.execute_query(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass", [table])
            described[table] = [sorted(tuple(c) for c in columns), sorted(i[0] for i in indexes),
                                sorted(c[0] for c in constraints)]
    return described


def _squeeze(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()
