"""An unambiguous header section, or a refusal saying what is ambiguous.

The DKIM verifier (dkimpy) and the reader of directives (Python's email
parser, under mail-parser) must see the same header fields, or a message
can show one Subject to the verifier and another to the reader. Each trick
of that kind was seen to work:

* a second Subject on top of a signed one: DKIM signs the *last* instance,
  the reader takes the *first*;
* a bare CR inside a header line (``X-Note: a<CR>Subject: grant ...``):
  one field to dkimpy, which splits lines at LF, two to Python's parser,
  which also splits at a lone CR; a bare LF splits differently again in
  other software (and fools MXs that strip headers line by line).

So a header section is accepted only when:

1. no CR or LF stands alone anywhere in it (only CRLF ends a line), and
   no other control character but TAB appears in it;
2. every line is a field's first line (a name of printable ASCII but
   ":", then ":") or its continuation (starting with SP or TAB, after a
   field): no line either parser would skip, refuse or read otherwise;
3. no field that RFC 5322 (and MIME, for the top level) allows once
   appears more than once.

Within that grammar dkimpy (``dkim.rfc822_parse``) and Python's parser
(compat32, as mail-parser uses it) split a section into the same fields,
with the same names and values, so it is read once, here, by one parser
(tests/test_headersection.py runs both beside it on thousands of tricky
sections). Then "the Subject" means one field, read the same way by both,
and the signature's coverage of it (h=) is coverage of what the reader
acts on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 5322 3.6 (at most one of each), and MIME's own top-level fields
# (RFC 2045, RFC 2183): two of either can be read two ways.
SINGLETONS = (
    "date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id", "in-reply-to", "references", "subject",
    "mime-version", "content-type", "content-transfer-encoding", "content-disposition",
)
_DISPLAY = {"message-id": "Message-ID", "mime-version": "MIME-Version", "cc": "Cc", "bcc": "Bcc"}
# A CR or LF that is not part of a CRLF; or another control character:
# some readers split lines at VT, FF or FS (Python's str.splitlines does),
# and no mail program writes them here. One pattern: one pass a message.
_FORBIDDEN = re.compile(rb"\r(?!\n)|(?<!\r)\n|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A field's first line starts with its name and a colon (RFC 5322 2.2: the
# name is printable ASCII but ":"; no space before the colon).
_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


class Ambiguous(ValueError):
    """The header section can be read more than one way; says how."""


@dataclass(frozen=True)
class HeaderSection:
    # The fields as dkimpy and Python's parser both read them: (name, value)
    # with the value's folding kept and its line end dropped.
    fields: tuple[tuple[str, bytes], ...]

    def values(self, name: str) -> list[bytes]:
        return [value for field, value in self.fields if field.lower() == name]

    def text(self, name: str) -> str | None:
        """A singleton field's value unfolded, as UTF-8 text (RFC 6532);
        None when absent or not UTF-8."""
        values = self.values(name)
        if not values:
            return None
        try:
            return re.sub(rb"\r\n", b"", values[0]).decode("utf-8").strip()
        except UnicodeDecodeError:
            return None


def display_name(name: str) -> str:
    return _DISPLAY.get(name, name.title())


def header_end(raw: bytes) -> int:
    """Where the header section ends: just past the CRLF of its last line."""
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 2


def read(raw: bytes) -> HeaderSection:
    """The header section of ``raw``, or :class:`Ambiguous`."""
    header = raw[: header_end(raw)]
    forbidden = _FORBIDDEN.search(header)
    if forbidden:
        line = header.count(b"\n", 0, forbidden.start()) + 1
        found = forbidden.group()
        if found in (b"\r", b"\n"):
            which = "CR" if found == b"\r" else "LF"
            raise Ambiguous(f"a bare {which} in header line {line} (only CRLF may end a line)")
        raise Ambiguous(f"a control character (0x{found[0]:02x}) in header line {line}")
    fields: list[tuple[str, bytes]] = []
    for line in header.split(b"\r\n"):
        if not line:  # the end of the section
            break
        if line[0] in b" \t":
            if not fields:
                raise Ambiguous("a line that is not a header field")
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        named = _NAME.match(line)
        if named is None:
            raise Ambiguous("a line that is not a header field")
        fields.append((line[:named.end() - 1].decode("ascii"), line[named.end():].lstrip(b" \t")))
    counts: dict[str, int] = {}
    for name, _value in fields:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    for name in SINGLETONS:
        if counts.get(name, 0) > 1:
            raise Ambiguous(f"more than one {display_name(name)} header")
    return HeaderSection(tuple(fields))
