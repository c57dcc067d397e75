"""The trusted MX's Authentication-Results: only the topmost count, and the
gateway removes every one carrying its ids before storing."""

from __future__ import annotations

import pytest

from gateway.admission.authresults import authserv_id, strip, topmost
from gateway.admission.headersection import read

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

MX = "mx.firm.example"
TRUSTED = frozenset({MX})


def results(*lines: str) -> list[str]:
    section = read(("\r\n".join(lines) + "\r\nFrom: boss@firm.example\r\n\r\nbody\r\n").encode())
    return [str(header) for header in topmost(section, TRUSTED)]


def test_the_mx_results_on_top_count():
    found = results(f"Authentication-Results: {MX}; dkim=pass header.d=firm.example",
                    f"Authentication-Results: {MX}; dmarc=pass header.from=firm.example",
                    f"Received: from outside by {MX}")
    assert len(found) == 2


def test_results_below_the_mx_received_do_not_count():
    found = results(f"Authentication-Results: {MX}; dkim=none",
                    f"Received: from outside by {MX}",
                    f"Authentication-Results: {MX}; dkim=pass header.d=firm.example")
    assert found == [f"Authentication-Results: {MX}; dkim=none"]


def test_results_below_a_sender_field_or_another_id_do_not_count():
    assert results("X-Mailer: x", f"Authentication-Results: {MX}; dkim=pass header.d=firm.example") == []
    assert results("Authentication-Results: mx.other.example; dkim=none",
                   f"Authentication-Results: {MX}; dkim=pass header.d=firm.example") == []


def test_the_mx_trace_fields_above_its_results_are_passed_over():
    found = results("Return-Path: <boss@firm.example>", f"Received: from outside by {MX}",
                    f"Authentication-Results: {MX}; dkim=pass header.d=firm.example",
                    "Received: from a forged hop", f"Authentication-Results: {MX}; dkim=pass header.d=x.example")
    assert len(found) == 1 and "firm.example" in found[0]


@pytest.mark.parametrize("value, expected", [
    (b" mx.firm.example; dkim=pass", "mx.firm.example"),
    (b"\r\n (comment) MX.Firm.Example 1; none", "mx.firm.example"),
    (b"mx.firm.example;", "mx.firm.example"),
    (b"", ""),
])
def test_authserv_id(value, expected):
    assert authserv_id(value) == expected


def test_our_results_are_removed_wherever_they_are_and_others_kept():
    raw = (f"Authentication-Results: {MX}; dkim=pass\r\n"
           "Received: x\r\n"
           f"Authentication-Results:\r\n (folded) {MX.upper()};\r\n  spf=pass\r\n"
           "Authentication-Results: mx.other.example; dkim=pass\r\n"
           "Authentication-Results: gateway.example; none\r\n"
           "Subject: hi\r\n\r\n"
           f"Authentication-Results: {MX}; this is the body\r\n").encode()
    assert strip(raw, frozenset({MX, "gateway.example"})) == (
        "Received: x\r\n"
        "Authentication-Results: mx.other.example; dkim=pass\r\n"
        "Subject: hi\r\n\r\n"
        f"Authentication-Results: {MX}; this is the body\r\n").encode()


def test_a_message_without_our_results_is_left_as_it_is():
    raw = b"Subject: hi\r\n\r\nbody\r\n"
    assert strip(raw, TRUSTED) is raw
