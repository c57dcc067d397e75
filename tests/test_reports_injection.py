"""Formula injection: text that would start a formula gets an apostrophe."""

import pytest

from gateway.reports.writers.injection import neutralise

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@x", "\t=1", "\r=1",
                                  "=", "@SUM(A1)"])
def test_triggers_are_neutralised(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["", "1042", "jane@client.example", "a=b", " =1", "'=1", "Émile"])
def test_other_text_is_untouched(text):
    assert neutralise(text) == text
