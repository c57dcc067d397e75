"""Schema versions with Tortoise's migrations (gateway/migrations/), on the
run's database: a new database is made at the latest migration, one that
is behind is refused by name, and `clienttrack db upgrade` brings it up to
date keeping every row, also a database of a release from before
migrations (tests/data/releases), which it recognises by itself."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import httpx
import pytest
from tortoise import connections

from gateway import cli
from gateway.core import db, schema
from gateway.inbound import queue as inbound
from gateway.core.models import InboundMessage, InboundRaw, OutboundMessage
from gateway.service import running
from tests import testdb
from tests.conftest import DEMO_STAFF, database_url, make_settings, request_mail, send, settled

# New databases, releases from before migrations: on PostgreSQL too, each starts empty (tests/testdb.py).
pytestmark = pytest.mark.empty_database

PRODUCT = Path(schema.__file__).resolve().parents[1] / "migrations"
LATER_MIGRATION = Path(__file__).resolve().parent / "data" / "migration_firm_vat_number.py"
RELEASES = Path(__file__).resolve().parent / "data" / "releases"


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
        assert sorted([one, two]) == [[], [f"Applied {later}"]]
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


@pytest.mark.parametrize("release", ["3a04bb6", "2b1ef16"])
def test_a_release_database_from_before_migrations_is_recognised_upgraded_and_served(tmp_path, capsys, release):
    """An install of the release (tables made by its generate_schemas, no
    migration records) with requests, sealed files as chunk rows, queue
    rows, events and an open client session: `db upgrade` alone (no SQL
    by hand) keeps every row and the gateway of today serves them."""
    from tests.test_documents_migrate import downloads, legacy_requests
    from tests.web_support import PASSWORD, base_url, submit

    settings = make_settings(tmp_path)
    database = ["--data-dir", str(settings.data_dir), "--database-url", settings.database]

    async def fill() -> tuple[list, dict, inbound.Arrival]:
        async with running(settings) as gw:
            made = await legacy_requests(gw, count=2)  # files as sealed_chunk rows, as the releases kept them
            await send(gw, request_mail("status"))  # inbound, outbound, events, admission counts
            await settled()
            async with httpx.AsyncClient(base_url=base_url(gw)) as http:  # a client session, an unlock guard
                assert (await submit(http, made[0][0], PASSWORD)).status_code == 303
            unprocessed = inbound.arrival(  # sealed as the queue seals, for 2b1ef16's queue below
                request_mail("status").as_bytes(), master_key=gw.deps.master_key, mail_from=DEMO_STAFF,
                sender="", firm_domain="", rcpt_tos=["pay@demo.localhost"], peer="", trusted_peer=False,
                now=gw.deps.clock())
            return made, dict(http.cookies), unprocessed

    made, cookies, unprocessed = asyncio.run(fill())
    kept = asyncio.run(_as_release(settings.database, release))
    if release == "2b1ef16":  # mail it queued and never processed (admission named no sender then)
        kept = asyncio.run(_queued_unprocessed(settings.database, unprocessed))
    assert kept["sealed_chunk"] and kept["outbound_message"] and kept["event"] and kept["inbound_message"]

    assert cli.main(["requests", "list", *database]) == 1  # behind: refused, naming the command
    assert "clienttrack db upgrade" in capsys.readouterr().err
    assert cli.main(["db", "upgrade", *database]) == 0
    done = capsys.readouterr().out.splitlines()
    assert done[0].startswith(("Recorded 0001_initial: the database already had" if release == "3a04bb6" else
                               "Applied 0001_initial: the database was made by the release 2b1ef16"))
    assert done[1:] == [f"Applied {name}" for name in _migration_names()[1:]]

    async def read() -> dict[str, list[dict]]:
        async with db.opened(settings.database):  # refuses a database that is still behind
            return await _rows_by_column()

    after = asyncio.run(read())
    for table, rows in kept.items():  # every row, every column the release had, as it was...
        columns = [c for c in rows[0] if (table, c) != ("inbound_message", "sealed_raw")] if rows else ()
        assert _sorted([{c: row[c] for c in columns} for row in after[table]]) == _sorted(
            [{c: row[c] for c in columns} for row in rows]), table
    # ...but the queue's sealed messages, in a table of their own since 0011 (a done message has none)
    assert {row["id"]: row["sealed_raw"] for row in after["inbound_raw"]} == {
        row["id"]: row["sealed_raw"] for row in kept["inbound_message"] if row["sealed_raw"] is not None}
    if release == "2b1ef16":
        assert unprocessed.queue_id in {row["id"] for row in after["inbound_raw"]}
    # Columns the release lacked: the value a new row gets.
    assert {row["retention_days"] for row in after["firm"]} == {90}
    assert {row["blob"] for row in after["sealed_file"]} == {""}
    assert {row["lease_owner"] for row in after["outbound_message"]} == {""}
    if release == "2b1ef16":
        assert {(row["sender"], row["firm_domain"]) for row in after["inbound_message"]} == {("", "")}

    if release == "3a04bb6":  # then the files move to the blob store, as the README says
        assert cli.main(["blobs", "migrate", *database]) == 0
        assert f"Moved {2 * (len(made[0][1]) + 1)} files" in capsys.readouterr().out

    async def serve() -> None:
        async with running(settings) as gw:
            if release == "2b1ef16":  # not acted upon: no firm, no sender
                await settled()
                outcomes = await InboundMessage.all().values_list("outcome", flat=True)
                assert "discarded by unknown-sender" in outcomes
                assert await InboundRaw.all().count() == 0  # the moved message, processed: no copy left
                assert await OutboundMessage.all().count() == len(kept["outbound_message"])
            for path, datas in made:  # unlocked with the password, every file byte-identical
                assert await downloads(gw, path, len(datas)) == datas
            if release == "3a04bb6":  # the browser unlocked before the upgrade is still in
                async with httpx.AsyncClient(base_url=base_url(gw), cookies=cookies) as http:
                    assert await downloads(gw, made[0][0], len(made[0][1]), http) == made[0][1]

    asyncio.run(serve())
    assert cli.main(["requests", "list", *database]) == 0
    listed = capsys.readouterr().out
    assert "M0" in listed and "M1" in listed and "jane@client.example" in listed


@pytest.mark.parametrize("made_by", [["2b1ef16", "3a04bb6"], ["3a04bb6", "unknown"]])
async def test_an_older_install_run_by_the_release_is_recognised_and_an_unknown_one_refused(tmp_path, made_by):
    # 2b1ef16 then 3a04bb6: the release's start made the missing tables, not
    # the columns. A database with a column no version had is refused, untouched.
    async with db.connected(database_url(tmp_path)):
        connection = connections.get("default")
        await connection.execute_script(_release_sql(made_by[0]))
        if made_by[1] != "unknown":
            await connection.execute_script(_release_sql(made_by[1]))
            assert (await schema.recognise()).older_release
            assert (await schema.upgrade("")) [0].startswith("Applied 0001_initial: the database was made by")
            assert (await schema.version()).pending == ()
            return
        await connection.execute_script("ALTER TABLE firm ADD COLUMN vat_number VARCHAR(40)")
        await connection.execute_script("ALTER TABLE staff DROP COLUMN name")
        untouched = await _schema()
        with pytest.raises(schema.SchemaUnknown, match=r"firm has unknown vat_number; staff lacks name\. "
                                                        "Nothing was changed"):
            await schema.upgrade("")
        assert await _schema() == untouched
        assert schema.RECORD_TABLE not in await _all_tables()


def _release_sql(release: str) -> str:
    dialect = "postgres" if testdb.current.postgres else "sqlite"
    return (RELEASES / f"{release}.{dialect}.sql").read_text()


def _migration_names() -> list[str]:
    async def names() -> list[str]:
        async with db.connected("sqlite://:memory:"):
            return [name for name, _ in await schema._migration_states()]
    return asyncio.run(names())


async def _as_release(database: str, release: str) -> dict[str, list[dict]]:
    """The database (made by today's code, with rows) made into an install of
    the release: its rows read, every table dropped, the release's own DDL
    run, the rows put back in the columns the release had. Its rows then,
    by table, sorted."""
    async with db.connected(database):
        connection = connections.get("default")
        rows = await _rows_by_column()
        postgres = connection.capabilities.dialect == "postgres"
        if postgres:
            await connection.execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        else:
            tables = await _all_tables()
            await connection.execute_script("PRAGMA foreign_keys = OFF; " + "".join(
                f'DROP TABLE "{table}"; ' for table in tables) + "PRAGMA foreign_keys = ON;")
        await connection.execute_script(_release_sql(release))
        release_columns = {table: [c for c in columns if c in rows.get(table, [{}])[0]] if rows.get(table) else []
                           for table, columns in (await schema._tables_and_columns()).items()}
        for table in _in_creation_order(_release_sql(release)):
            found = rows.get(table, [])
            columns = release_columns[table]
            if not found:
                continue
            marks = ", ".join(f"${i}" if postgres else "?" for i in range(1, len(columns) + 1))
            await connection.execute_many(
                f'INSERT INTO "{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)}) VALUES ({marks})',
                [[row[c] for c in columns] for row in found])
            if postgres and "id" in columns:  # the release's sequences were past its ids
                _, (sequence,) = await connection.execute_query(f"SELECT pg_get_serial_sequence('\"{table}\"', 'id')")
                if sequence[0]:
                    await connection.execute_query(f'SELECT setval($1, (SELECT MAX(id) FROM "{table}"))', [sequence[0]])
        return await _rows_by_column()


async def _queued_unprocessed(database: str, unprocessed: inbound.Arrival) -> dict[str, list[dict]]:
    """A queued row in the release's columns, written like its processed
    neighbour (each database's own way of keeping times and JSON)."""
    async with db.connected(database):
        connection = connections.get("default")
        _, done = await connection.execute_query("SELECT * FROM inbound_message")
        row = {**dict(done[0]), "id": unprocessed.queue_id, "status": "queued", "sealed_raw": unprocessed.sealed_raw,
               "size": unprocessed.size, "attempts": 0, "outcome": "", "last_error": "", "finished_at": None}
        marks = [f"${n}" if connection.capabilities.dialect == "postgres" else "?" for n in range(1, len(row) + 1)]
        await connection.execute_query(
            f'INSERT INTO inbound_message ({", ".join(row)}) VALUES ({", ".join(marks)})', list(row.values()))
        return await _rows_by_column()


def _in_creation_order(sql: str) -> list[str]:
    # The DDL makes a table after those it references.
    return re.findall(r'CREATE TABLE IF NOT EXISTS "(\w+)"', sql)


async def _rows_by_column() -> dict[str, list[dict]]:
    connection = connections.get("default")
    rows = {}
    for table in await _tables():
        _, found = await connection.execute_query(f'SELECT * FROM "{table}"')
        rows[table] = _sorted([dict(row) for row in found])
    return rows


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: repr(sorted(row.items())))


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
    return [table for table in await _all_tables() if table != schema.RECORD_TABLE]


async def _all_tables() -> list[str]:
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    _, found = await connection.execute_query(sql)
    return sorted(row[0] for row in found)


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
