"""Values made one line for a mail (gateway/outbound/cleaning.py)."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from gateway.outbound import cleaning
from gateway.outbound.cleaning import clean_lines, one_line

pytestmark = pytest.mark.no_database


def test_the_breaking_class_is_every_control_and_line_or_paragraph_separator():
    # one_line and clean_lines replace these with a regular expression; what
    # they must replace is every character of Unicode's Cc, Zl and Zp.
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert bool(cleaning._BREAKING.fullmatch(char)) == (unicodedata.category(char) in {"Cc", "Zl", "Zp"}), hex(code)


@pytest.mark.parametrize(("value", "line"), [
    ("Invoice 1042", "Invoice 1042"),
    ("  Smith \t& Jones\r\nBcc: evil@x ", "Smith & Jones Bcc: evil@x"),
    ("1 250,00\u00a0$ CAD", "1 250,00 $ CAD"),  # str.split() takes a no-break space for white space
    ("Dog\u2028\x0bsep\x00\x7f\x85end", "Dog sep end"),
    ("\u202eevil\u2066 Éric\u200f", "evil Éric"),  # bidi controls dropped
    ("", ""),
    (1042, "1042"),
])
def test_one_line(value, line):
    assert one_line(value) == line


def test_clean_lines_keeps_breaks_and_indentation():
    assert clean_lines("\n  first\x00 line \u202e\r\n\r\n    indented\u2028last\n\n") == \
        ["  first line", "", "    indented", "last"]


@pytest.mark.parametrize("spec", [
    "jane@client.example", "Jane.Doe+tax@Client.Example", "a@b", "o'brien@x.example", "x_y{1}@sub-domain.example",
    "#!$%&'*+-/=?^_`{|}~@x9.example", "pay@smith.clienttrack.test",
    # not of the plainest kind: read by the email package's parser, as before
    '"jane doe"@client.example', "jane@[127.0.0.1]", "jane@client_example.test", "jane@-client.example",
])
def test_an_address_is_the_one_the_email_package_reads(spec):
    from email.headerregistry import Address
    made = cleaning.address(spec, "Anna Lee")
    read = Address(display_name="Anna Lee", addr_spec=spec)
    assert (made.display_name, made.username, made.domain, made.addr_spec, str(made)) == \
        (read.display_name, read.username, read.domain, read.addr_spec, str(read))


@pytest.mark.parametrize("spec", ["jane", "jane@", "@client.example", "jane@client.example, evil@x", "<jane@x>",
                                  "jane@client.example.", "jane.@client.example", "Éric@exemple.ca"])
def test_what_is_not_one_mailbox_is_refused(spec):
    with pytest.raises(ValueError):
        cleaning.address(spec)
