"""`clienttrack report --firm D --format F --period P [--status S] [-o FILE]`."""

import argparse
import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook

from gateway import cli as main_cli
from gateway.core import datadir, db
from gateway.core.directory import DirectoryError
from gateway.core.models import RequestStatus
from gateway.reports.cli import add_parser

from tests.conftest import make_settings
from tests.test_reports_fixtures import make_firm, make_request

MARCH = datetime(2026, 3, 10, 15, tzinfo=timezone.utc)


def _parser() -> argparse.ArgumentParser:
    # As gateway/cli.py hooks it in.
    parser = argparse.ArgumentParser(prog="clienttrack")
    add_parser(parser.add_subparsers(dest="command", required=True), main_cli._common)
    return parser


@pytest.fixture
def settings(tmp_path):
    settings = make_settings(tmp_path)
    datadir.prepare(settings.data_dir, settings.database)  # as the gateway makes it: private

    async def seed():
        async with db.opened(settings.database):
            firm = await make_firm()
            for hours in range(3):
                await make_request(firm, created_at=MARCH, paid_at=MARCH + timedelta(hours=hours))
            await make_request(firm, created_at=MARCH, status=RequestStatus.SENT)

    asyncio.run(seed())
    return settings


def _run(settings, *words: str) -> int:
    args = _parser().parse_args(["report", *words])
    return args.run(args, settings)


def test_writes_the_file_and_prints_the_summary(settings, tmp_path, capsys):
    target = tmp_path / "march.xlsx"
    assert _run(settings, "--firm", "firm.example", "--format", "excel", "--period", "2026-03", "--status", "paid",
                "-o", str(target)) == 0
    out, err = capsys.readouterr()
    assert "CAD: 3 requests, 3 paid" in out and "2026-03-01 to 2026-03-31" in out
    assert f"Wrote {target}" in err and "[" not in err  # no progress bar off a terminal
    sheet = load_workbook(target)["Payments"]
    assert sheet.max_row == 1 + 3 + 2  # header, rows, blank, totals
    assert not list(tmp_path.glob(".clienttrack-report-*"))


def test_the_default_name_has_the_real_extension(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _run(settings, "--firm", "firm.example", "--format", "qbo", "--period", "2026-03-01..2026-03-31") == 0
    written = tmp_path / "firm.example-qbo-2026-03-01_2026-03-31.csv"
    assert written.exists()
    assert list(csv.reader(io.StringIO(written.read_text())))[0] == ["Date", "Description", "Amount"]


def test_dash_o_keeps_the_formats_real_extension(settings, tmp_path, capsys):
    asked = tmp_path / "report.qbo"  # Intuit's Web Connect extension: not what this file is
    assert _run(settings, "--firm", "firm.example", "--format", "qbo", "--period", "2026-03", "-o", str(asked)) == 0
    assert not asked.exists() and (tmp_path / "report.csv").exists()
    assert f"Wrote {tmp_path / 'report.csv'}" in capsys.readouterr().err


def test_dash_writes_to_standard_output(settings, capsysbinary):
    assert _run(settings, "--firm", "firm.example", "--format", "csv", "--period", "2026-03", "-o", "-") == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"\xef\xbb\xbfRequest ID,") and out.count(b"\r\n") == 5
    assert b"CAD: 4 requests, 3 paid" in err


def test_a_progress_bar_on_a_terminal(settings, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert _run(settings, "--firm", "firm.example", "--format", "json", "--period", "2026-03",
                "-o", str(tmp_path / "r.json")) == 0
    assert "\r[" + "#" * 30 + "] 4/4 rows\n" in terminal.getvalue()


@pytest.mark.parametrize(
    ("words", "named"),
    [
        (["--format", "pdf", "--period", "2026-03"], "'pdf'"),
        (["--format", "csv", "--period", "march"], "'march'"),
        (["--format", "csv", "--period", "2026-03", "--status", "late"], "'late'"),
    ],
)
def test_a_wrong_word_is_named_with_the_choices(settings, capsys, words, named):
    assert _run(settings, "--firm", "firm.example", *words) == 2
    err = capsys.readouterr().err
    assert named in err and "choose" in err


def test_the_file_is_private_and_a_bad_folder_is_an_error(settings, tmp_path, capsys):
    target = tmp_path / "r.csv"
    assert _run(settings, "--firm", "firm.example", "--format", "csv", "--period", "2026", "-o", str(target)) == 0
    assert target.stat().st_mode & 0o777 == 0o600
    assert _run(settings, "--firm", "firm.example", "--format", "csv", "--period", "2026",
                "-o", str(tmp_path / "missing" / "r.csv")) == 1
    assert "cannot write the report" in capsys.readouterr().err


def test_an_unknown_firm(settings):
    with pytest.raises(DirectoryError):
        _run(settings, "--firm", "nobody.example", "--format", "csv", "--period", "2026")


def test_an_empty_period_still_writes_a_file_for_scripts(settings, tmp_path, capsys):
    target = tmp_path / "empty.csv"
    assert _run(settings, "--firm", "firm.example", "--format", "csv", "--period", "2025", "-o", str(target)) == 0
    assert "No payment requests" in capsys.readouterr().out
    assert target.read_bytes().count(b"\r\n") == 1
