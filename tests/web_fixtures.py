"""Fixtures for the web tests (a pytest plugin: test modules name it in
pytest_plugins): a clock the test moves, and the gateway reading it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest

from gateway.service import Running, running
from tests.conftest import make_settings


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Running]:
    """The whole gateway on loopback, reading the test's clock."""
    async with running(make_settings(tmp_path), clock=clock) as gw:
        yield gw
