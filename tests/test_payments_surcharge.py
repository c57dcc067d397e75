"""The firm's side of the card fee: its notice to the card networks, its own
rate and its province decide what `+fee` adds, on the pay page, in the
sandbox and in what the ledger accepts as paid."""

from __future__ import annotations

import subprocess
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
import pytest

from gateway.core import db
from gateway.payments import surcharge
from gateway.payments.config import PaymentsConfig
from gateway.payments.provider import PayAttempt, allowed_totals
from gateway.payments.sandbox import SandboxProvider
from tests.conftest import database_url
from tests.payments_support import make_firm, make_request
from tests.test_cli import run as run_cli

NOW = datetime(2026, 3, 5, 15, 0, tzinfo=timezone.utc)
CONFIG = PaymentsConfig()


@pytest.fixture
async def database(tmp_path):
    async with db.opened(database_url(tmp_path)):
        yield


async def credit_total(firm, request) -> int:
    return surcharge.quote(request, firm, CONFIG, funding="credit", province=None).total_minor


async def test_plus_fee_adds_nothing_until_30_days_after_the_firms_notice(database):
    firm, staff = await make_firm(NOW, notice=None)
    request = await make_request(firm, staff, NOW)
    assert await credit_total(firm, request) == 10000  # no notice recorded: no fee
    assert "has not recorded that notice" in surcharge.why_not(firm, NOW.date())

    firm.surcharge_notice_date = date(2026, 2, 4)  # 29 days before the request (Toronto's 2026-03-05)
    assert await credit_total(firm, request) == 10000
    assert "works only from 2026-03-06" in surcharge.why_not(firm, NOW.date())
    firm.surcharge_notice_date = date(2026, 2, 3)  # 30 days before
    assert await credit_total(firm, request) == 10240
    # The ledger accepts only what the page could have asked.
    firm.surcharge_notice_date = None
    assert allowed_totals(request, firm, CONFIG, funding="credit", province=None) == {10000}


async def test_the_sandbox_charges_no_fee_before_the_notice_takes_effect(database):
    firm, staff = await make_firm(NOW, notice=NOW.date() - timedelta(days=3))
    request = await make_request(firm, staff, NOW)
    outcome = await SandboxProvider(CONFIG, clock=lambda: NOW).confirm(
        request, PayAttempt(card_number="4242 4242 4242 4242", approved_total=10000))
    assert outcome.outcome == "succeeded" and outcome.state.amount_received_minor == 10000


async def test_each_firm_passes_on_its_own_rate(database):
    firm, staff = await make_firm(NOW)
    request = await make_request(firm, staff, NOW)
    await surcharge.set_terms(firm, now=NOW, actor="test", rate="2%", fixed_minor=0)
    assert firm.card_fee_rate == "0.02"
    assert await credit_total(firm, request) == 10200  # 2% of $100.00, no fee on the fee (was $2.05)
    await surcharge.set_terms(firm, now=NOW, actor="test", rate="default")
    assert await credit_total(firm, request) == 10240
    with pytest.raises(surcharge.RateError):
        surcharge.parse_rate("12%")
    with pytest.raises(surcharge.RateError):
        surcharge.parse_rate("two")
    assert surcharge.parse_rate("2.9 %") == Decimal("0.029")


async def test_a_firm_in_quebec_adds_no_fee(database):
    firm, staff = await make_firm(NOW, province="QC")
    request = await make_request(firm, staff, NOW)
    quote = surcharge.quote(request, firm, CONFIG, funding="credit", province="ON")
    assert (quote.fee_minor, quote.rule) == (0, "no-fee-firm-region")
    with pytest.raises(surcharge.RateError):
        await surcharge.set_terms(firm, now=NOW, actor="test", province="Narnia")


def test_the_command_line_sets_the_rate_and_the_notice(tmp_path):
    def run(*words: str) -> subprocess.CompletedProcess:
        return run_cli(tmp_path, *words)  # on the run's database, as tests/test_cli.py runs commands

    assert run("firm", "add", "smith.example", "--name", "Smith CPA").returncode == 0
    shown = run("firm", "set", "smith.example", "--card-fee-rate", "2.5%", "--card-fee-fixed", "0.30",
                "--province", "Ontario")
    assert shown.returncode == 0, shown.stderr
    assert "Card fee rate: 2.5% + $0.30 CAD" in shown.stdout and "Located in: CA, Ontario" in shown.stdout
    assert "Surcharge notice: not recorded, so +fee adds no fee." in shown.stdout
    noticed = run("firm", "surcharge", "smith.example", "--notice-date", "2026-01-05")
    assert "given 2026-01-05; +fee works s" in noticed.stdout and "2026-02-04" in noticed.stdout
    wrong = run("firm", "surcharge", "smith.example", "--notice-date", "05/01/2026")
    assert wrong.returncode == 2 and "is not a date" in wrong.stderr
    assert run("firm", "set", "smith.example", "--card-fee-rate", "30%").returncode == 2
