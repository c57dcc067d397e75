"""The terminal progress bar."""

import io

import pytest

from gateway.reports.progress import ProgressBar

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


def test_draws_when_the_bar_moves_and_ends_the_line():
    stream = io.StringIO()
    bar = ProgressBar(100_000, stream)
    for _ in range(50):
        bar.advance(2000)
    bar.finish()
    frames = stream.getvalue().split("\r")[1:]
    assert 25 <= len(frames) <= 32  # about one per step of the bar, not per batch
    assert frames[-1] == "[" + "#" * 30 + "] 100,000/100,000 rows\n"


def test_more_rows_than_counted_and_nothing_counted():
    stream = io.StringIO()
    bar = ProgressBar(10, stream)
    bar.advance(15)
    assert "[" + "#" * 30 + "] 15/10 rows" in stream.getvalue()
    stream = io.StringIO()
    ProgressBar(0, stream).finish()
    assert stream.getvalue() == "\r[" + "#" * 30 + "] 0/0 rows\n"
