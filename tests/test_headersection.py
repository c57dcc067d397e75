"""The header section the verifier and the reader both read the same way,
or a refusal saying what is ambiguous."""

from __future__ import annotations

import pytest

from gateway.admission.headersection import SINGLETONS, Ambiguous, display_name, read

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

PLAIN = b"From: Jane <jane@firm.example>\r\nSubject: Invoice\r\n 1042\r\nTo: pay@firm.example\r\n\r\nbody\r\n"


def test_a_plain_section_is_read_once_for_both():
    section = read(PLAIN)
    assert section.fields == (("From", b"Jane <jane@firm.example>"), ("Subject", b"Invoice\r\n 1042"),
                              ("To", b"pay@firm.example"))
    assert section.text("subject") == "Invoice 1042" and section.text("cc") is None
    assert section.message["Subject"] == "Invoice\r\n 1042"


def test_the_body_may_hold_anything():
    read(PLAIN + b"a bare\rCR, a bare\nLF, \x00 and a second\r\nSubject: line\r\n")


@pytest.mark.parametrize("header, words", [
    (b"X-Note: a\rSubject: grant\r\n", "bare CR in header line 1"),
    (b"X-Note: a\nSubject: grant\r\n", "bare LF in header line 1"),
    (b"X-A: 1\r\nX-Note: a\r\rSubject: grant\r\n", "bare CR in header line 2"),
    (b"X-Note: a\x0bSubject: grant\r\n", r"control character \(0x0b\)"),
    (b"X-Note: a\x00b\r\n", r"control character \(0x00\)"),
    (b"Subject : grant\r\n", "not a header field"),
    (b" Subject: grant\r\n", "not a header field"),
    (b"Subj\xd0\xb5ct: grant\r\n", "not a header field"),
    (b":no name\r\n", "not a header field"),
    (b"From jane@firm.example Mon Jan  1 00:00:00 2026\r\n", "not a header field"),
    (b"Subject: grant\r\n", "more than one Subject header"),
    (b"SUBJECT:grant\r\n", "more than one Subject header"),
    (b"message-id: <a@b>\r\nMessage-ID: <c@d>\r\n", "more than one Message-ID header"),
])
def test_ambiguous_sections_are_refused_saying_how(header, words):
    with pytest.raises(Ambiguous, match=words):
        read(header + PLAIN)


@pytest.mark.parametrize("name", SINGLETONS)
def test_each_singleton_may_appear_once(name):
    read(f"{name}: x\r\n".encode() + b"X-Other: y\r\n\r\n")
    with pytest.raises(Ambiguous, match=f"more than one {display_name(name)} header"):
        read(f"{name}: x\r\nX-Other: y\r\n{name.upper()}: z\r\n\r\n".encode())


def test_fields_that_may_repeat_may_repeat():
    read(b"Received: a\r\nReceived: b\r\nDKIM-Signature: v=1\r\nDKIM-Signature: v=1\r\n" + PLAIN)
