"""The header section the verifier and the reader both read the same way,
or a refusal saying what is ambiguous."""

from __future__ import annotations

import email.parser
import email.policy
import random

import dkim
import pytest

from gateway.admission.headersection import SINGLETONS, Ambiguous, display_name, read

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

PLAIN = b"From: Jane <jane@firm.example>\r\nSubject: Invoice\r\n 1042\r\nTo: pay@firm.example\r\n\r\nbody\r\n"


def test_a_plain_section_is_read_once_for_both():
    section = read(PLAIN)
    assert section.fields == (("From", b"Jane <jane@firm.example>"), ("Subject", b"Invoice\r\n 1042"),
                              ("To", b"pay@firm.example"))
    assert section.text("subject") == "Invoice 1042" and section.text("cc") is None


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
    # The last line before the blank one: Python's parser takes it for the
    # body's first line, dkimpy skips it; neither is a field.
    (b"Subject: x\r\nFrom evil@evil.example\r\n\r\n", "not a header field"),
    (b"::\r\n", "not a header field"),
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


# What the one parser stands in for: dkimpy's split (the verifier) and
# Python's compat32 parser (the reader, under mail-parser). Whatever it
# accepts, both must read as the same fields, and neither may skip a line.
def _by_dkimpy(header: bytes) -> list[tuple[str, bytes]]:
    fields, _body = dkim.rfc822_parse(header + b"\r\n")
    return [(name.decode("ascii"), value.lstrip(b" \t").removesuffix(b"\r\n")) for name, value in fields]


def _by_python(header: bytes) -> list[tuple[str, bytes]]:
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(header + b"\r\n")
    assert not message.get_unixfrom() and not message.defects
    return [(name, value.encode("ascii", "surrogateescape")) for name, value in message.raw_items()]


_PIECES = [b"Subject", b"From", b"From ", b"X-A", b"to", b":", b": ", b" ", b"\t", b"\r\n", b"\r\n ", b"\r\n\t",
           b"\r", b"\n", b"a", b"=?utf-8?q?x?=", b"\xc3\xa9", b"\x85", b"\x0b", b"\x1c", b"\x00", b"\x7f", b"(", b'"',
           b"<j@f.example>", b"\r\n\r\n", b"Subj\xd0\xb5ct", b"::", b" :"]


def _sections(count: int) -> list[bytes]:
    rng = random.Random(18)
    found = []
    for _ in range(count):
        lines = []
        for _ in range(rng.randint(1, 5)):
            lines.append(b"".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 6))))
        found.append(b"\r\n".join(lines) + b"\r\n\r\nbody\r\n")
    return found


def test_what_the_one_parser_accepts_both_parsers_read_the_same_way():
    accepted = 0
    for raw in _sections(20_000) + [PLAIN, b"Subject: \r\n\tx\r\n\r\n", b"Subject:\r\n \r\n\r\n", b"\r\nbody\r\n"]:
        try:
            section = read(raw)
        except Ambiguous:
            continue
        accepted += 1
        header = raw[:raw.find(b"\r\n\r\n") + 2] if b"\r\n\r\n" in raw else raw
        assert list(section.fields) == _by_dkimpy(header) == _by_python(header), raw
    assert accepted > 1_000  # the pieces make accepted sections too, not only refusals
