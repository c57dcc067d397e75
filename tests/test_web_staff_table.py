"""The table's keys and filters as they travel in links (the pages
themselves: test_web_staff_requests.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from starlette.datastructures import QueryParams

from web.staff.table import Filters, Key, read_filters

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


def test_a_key_survives_its_link_to_the_microsecond():
    key = Key(datetime(2026, 3, 2, 15, 0, 0, 999_999, tzinfo=timezone.utc), 42)
    assert Key.read(key.text()) == key
    assert Key.read("nonsense") is None and Key.read("1.x") is None and Key.read("9" * 40 + ".1") is None


def test_filters_keep_what_is_chosen_and_drop_what_is_wrong():
    filters, wrong = read_filters(QueryParams("status=lost&period=Last-Month&q=  jane   doe &staff=Ann@x.example"),
                                  may_pick_staff=True)
    assert wrong == ["status"]
    assert (filters.status, filters.period, filters.q, filters.staff) == ("", "last-month", "jane doe", "ann@x.example")
    assert read_filters(QueryParams("staff=ann@x.example"), may_pick_staff=False)[0].staff == ""
    assert read_filters(QueryParams("q=" + "x" * 500), may_pick_staff=False)[0].q == "x" * 100


def test_a_filters_link_keeps_the_filters_and_moves_the_key():
    key = Key(datetime(2026, 3, 2, tzinfo=timezone.utc), 7)
    filters = Filters(status="unpaid", q="jane & co", after=key)
    assert filters.query() == f"status=unpaid&q=jane+%26+co&after={key.text()}"
    assert filters.query(after=None, before=key) == f"status=unpaid&q=jane+%26+co&before={key.text()}"
    assert Filters().query() == "" and not Filters().any and filters.any
