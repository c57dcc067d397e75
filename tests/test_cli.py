"""The `clienttrack` command line, run as a user would run it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import threading
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from gateway import cli
from gateway.service import running
from tests.conftest import command_database, make_settings, request_mail, send, settled

CLI = [str(Path(sys.executable).with_name("clienttrack"))]


def run(data_dir: Path, *words: str, database: str | None = None) -> subprocess.CompletedProcess:
    """The command on the run's database: the one named, or the folder's own.

    From a test without an event loop, `clienttrack`'s main() in this
    process (in_process): starting a process would add ~1 s of CPU a
    command (imports) and nothing those tests check. From a test with a
    loop, or a thread of one (a gateway of the test's may be running in
    this process, on the ORM's process-wide state), a `clienttrack`
    process. The process itself, its exit status and its environment
    have tests of their own (the mistakes, the environment, staff link)."""
    database = database or command_database(data_dir)
    options = ["--database-url", database] if database else []
    argv = [*words, "--data-dir", str(data_dir), *options]
    if _in_event_loop():
        return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=60)
    return in_process(argv)


def in_process(argv: list[str]) -> subprocess.CompletedProcess:
    """main(argv) as the process would run it: its exit status (argparse's
    SystemExit included) and what it wrote to stdout and stderr (through
    their .buffer too, as the reports do). The logging set-up main() makes
    is undone afterwards."""
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True) for _ in range(2))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # as the interpreter turns it into an exit status
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
                if not isinstance(exc.code, (int, type(None))):
                    print(exc.code, file=sys.stderr)
            code = 0 if code is None else code
    finally:
        root.handlers[:], root.level = handlers, level
    return subprocess.CompletedProcess(["clienttrack", *argv], code, out.buffer.getvalue().decode(),
                                       err.buffer.getvalue().decode())


def _in_event_loop() -> bool:
    """True in a test's event loop, and in a thread it handed work to."""
    if threading.current_thread() is not threading.main_thread():
        return True
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_firm_and_staff_management(tmp_path):
    added = run(tmp_path, "firm", "add", "smith-cpa.example", "--name", "Smith CPA")
    assert added.returncode == 0, added.stderr
    assert "pay@smith-cpa.example" in added.stdout
    assert run(tmp_path, "staff", "add", "Ann@Smith-CPA.example", "--firm", "smith-cpa.example",
               "--level", "send").returncode == 0
    assert run(tmp_path, "staff", "set", "ann@smith-cpa.example", "--firm", "smith-cpa.example",
               "--level", "report").returncode == 0
    listed = run(tmp_path, "staff", "list", "--firm", "smith-cpa.example")
    assert "ann@smith-cpa.example" in listed.stdout and "report" in listed.stdout
    assert run(tmp_path, "staff", "remove", "ann@smith-cpa.example", "--firm", "smith-cpa.example").returncode == 0
    assert "ann@" not in run(tmp_path, "staff", "list").stdout


def test_mistakes_get_clear_errors(tmp_path):
    missing = run(tmp_path, "staff", "add", "a@b.example", "--firm", "nowhere.example", "--level", "send")
    assert missing.returncode == 1 and "no firm with domain" in missing.stderr
    assert run(tmp_path, "firm", "add", "x.example", "--name", "X").returncode == 0
    twice = run(tmp_path, "firm", "add", "x.example", "--name", "X")
    assert twice.returncode == 1 and "exists already" in twice.stderr
    bad_currency = run(tmp_path, "firm", "add", "y.example", "--name", "Y", "--currency", "XYZ")
    assert bad_currency.returncode == 1 and "unknown currency" in bad_currency.stderr
    bad_level = run(tmp_path, "staff", "add", "a@x.example", "--firm", "x.example", "--level", "boss")
    assert bad_level.returncode == 2 and "invalid choice" in bad_level.stderr
    bad_url = subprocess.run([*CLI, "requests", "list", "--database-url", "mysql://x"], capture_output=True, text=True)
    assert bad_url.returncode == 2 and "database_url" in bad_url.stderr


async def test_requests_and_outbox_lists(tmp_path):
    settings = make_settings(tmp_path)
    async with running(settings) as gw:
        await send(gw, request_mail("Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 +fee"))
        await settled()
    listed = run(settings.data_dir, "requests", "list", "--json", database=settings.database)
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert item["invoice"] == "1042" and item["client"] == "jane@client.example"
    assert (item["amount"], item["currency"], item["status"]) == ("1250.00", "CAD", "sent")
    assert {"id", "fee", "total", "created_at", "paid_at"} <= item.keys()
    table = run(settings.data_dir, "requests", "list", "--status", "paid", database=settings.database)
    assert "jane@" not in table.stdout
    outbox = run(settings.data_dir, "outbox", "list", database=settings.database)
    assert "jane@client.example" in outbox.stdout and "sent" in outbox.stdout


def test_settings_come_from_the_environment(tmp_path):
    import os

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CLIENTTRACK_")},
           "CLIENTTRACK_DATA_DIR": str(tmp_path / "from-env")}
    done = subprocess.run([*CLI, "firm", "add", "e.example", "--name", "E"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from-env" / "clienttrack.db").exists()


def test_connect_stripe_without_stripe_keys_says_how_to_set_them(tmp_path):
    assert run(tmp_path, "firm", "add", "x.example", "--name", "X").returncode == 0
    done = run(tmp_path, "firm", "connect-stripe", "x.example")
    assert done.returncode == 1 and "CLIENTTRACK_STRIPE_SECRET_KEY" in done.stderr


def test_ledger_accounts_for_the_exports(tmp_path):
    assert run(tmp_path, "firm", "add", "x.example", "--name", "X").returncode == 0
    shown = run(tmp_path, "firm", "accounts", "x.example", "iif")
    assert "Undeposited Funds" in shown.stdout
    changed = run(tmp_path, "firm", "accounts", "x.example", "iif", "clearing=Stripe Clearing", "fees=Bank Charges")
    assert changed.returncode == 0 and "Stripe Clearing" in changed.stdout and "Bank Charges" in changed.stdout
    assert "Stripe Clearing" in run(tmp_path, "firm", "accounts", "x.example", "iif").stdout
    assert "1090" in run(tmp_path, "firm", "accounts", "x.example", "sage").stdout
    wrong = run(tmp_path, "firm", "accounts", "x.example", "iif", "bank=1000")
    assert wrong.returncode == 1 and "ROLE one of clearing, fees, receivable, surcharge" in wrong.stderr


async def test_staff_link_prints_a_one_time_sign_in_link_for_an_operator(tmp_path):
    import asyncio

    import httpx

    settings = make_settings(tmp_path)
    async with running(settings) as gw:
        base = gw.deps.settings.public_base_url
        done = await asyncio.to_thread(run, settings.data_dir, "staff", "link", "staff@demo.localhost",
                                       "--firm", "demo.localhost", "--base-url", base, database=settings.database)
        assert done.returncode == 0, done.stderr
        link = done.stdout.strip()
        assert link.startswith(f"{base}/staff/sign-in/") and len(link.rsplit("/", 1)[1]) == 43
        assert "once, within 15 minutes" in done.stderr
        async with httpx.AsyncClient() as http:
            page = await http.get(link)
            assert page.status_code == 200 and "staff@demo.localhost" in page.text
        stranger = await asyncio.to_thread(run, settings.data_dir, "staff", "link", "who@demo.localhost",
                                           "--firm", "demo.localhost", database=settings.database)
        assert stranger.returncode == 1 and "not staff of demo.localhost" in stranger.stderr


@pytest.mark.no_database
def test_help_names_every_command():
    def listed(argv: list[str]) -> list[str]:
        shown = in_process(argv)
        assert shown.returncode == 0, shown.stderr
        return re.findall(r"^    (\S+)", shown.stdout, re.MULTILINE)

    assert sorted(listed(["--help"])) == ["blobs", "db", "firm", "outbox", "report", "requests", "serve", "staff"]
    assert sorted(listed(["firm", "--help"])) == ["accounts", "add", "connect-stripe", "customers", "dkim",
                                                  "language", "list", "reminders", "retention", "set", "surcharge"]


@pytest.mark.no_database
def test_commands_load_what_only_some_of_them_need_when_those_run():
    # Every command builds the whole parser; the report writers (openpyxl),
    # dnspython's resolver and the fee arithmetic were ~0.3 s of CPU at each
    # start of `clienttrack firm list` and the like.
    probe = ("import sys, gateway.cli; print(' '.join(m for m in ('openpyxl', 'dns.resolver', "
             "'gateway.reports.export', 'gateway.payments.surcharge') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.split() == []
