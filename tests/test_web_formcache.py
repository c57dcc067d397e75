"""The kept unlock forms: how long, how many, and never past expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from web.formcache import FormCache, RenderedPage

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

NOW = datetime(2026, 3, 2, 15, tzinfo=timezone.utc)


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def page(name: str, expires_at: datetime | None = None) -> RenderedPage:
    return RenderedPage(200, name.encode(), b"", expires_at)


def test_a_page_is_kept_for_its_seconds_and_then_read_again():
    ticks = Ticks()
    cache = FormCache(seconds=2, size=10, monotonic=ticks)
    cache.put("a", page("a"))
    ticks.now += 1.9
    assert cache.get("a") == page("a")
    ticks.now += 0.1
    assert cache.get("a") is None


def test_past_its_size_the_oldest_page_goes_first():
    cache = FormCache(seconds=60, size=2, monotonic=Ticks())
    for name in "abc":
        cache.put(name, page(name))
    assert cache.get("a") is None
    assert cache.get("b") == page("b") and cache.get("c") == page("c")


def test_putting_a_page_again_makes_it_the_newest():
    cache = FormCache(seconds=60, size=2, monotonic=Ticks())
    cache.put("a", page("a"))
    cache.put("b", page("b"))
    cache.put("a", page("a2"))
    cache.put("c", page("c"))
    assert cache.get("b") is None and cache.get("a") == page("a2")


def test_zero_seconds_keeps_nothing():
    cache = FormCache(seconds=0, size=10, monotonic=Ticks())
    cache.put("a", page("a"))
    assert cache.get("a") is None


def test_a_page_does_not_fit_once_its_request_has_expired():
    expiring = page("a", NOW + timedelta(hours=1))
    assert expiring.fits(NOW + timedelta(minutes=59))
    assert not expiring.fits(NOW + timedelta(hours=1))
    assert page("not found").fits(NOW + timedelta(days=1000))
