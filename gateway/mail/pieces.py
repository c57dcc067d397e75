"""A message's attachments taken out as it streams past, before it is parsed.

The stdlib's parser (which mail-parser runs) reads a message a line at a
time and keeps every part: an 18 MB PDF sent base64 is 320,000 lines, and
parsing it held about nine copies of the message at once. This reads the
raw message in pieces, follows its MIME structure (headers, boundaries),
and hands each attachment's decoded bytes to a sink as they come (the
runner seals them under the request's data key and writes them to the blob
store), leaving in its place a random marker. What is left, the skeleton,
is small, and parse.parse reads it exactly as it would have read the
message: every header, boundary and other part is there byte for byte
(but for split()'s multiparts' boundaries, given fixed names where that
cannot change the reading: Splitter._renamed), and parse knows the
markers (its ``elided`` argument).

A part is taken out only where that cannot change how the message reads:
a leaf (not multipart, not message/*, not text/*, not TNEF by type or by
the name winmail.dat) sent base64, inside well-formed multiparts (a part's
headers end at an empty line and are all "name:" or continuation lines; a
boundary is one of its multipart's own lines). Its base64 must be clean
(letters of the alphabet, "=", lines ending CRLF: then no boundary can hide
in it, and no other line ending can split it differently) and is decoded as
decoding.b64decode does. Anything else anywhere in the message raises
Unsplittable, and the caller parses the whole message as before.
"""

from __future__ import annotations

import binascii
import email.message
import email.parser
import re
import secrets
from dataclasses import dataclass, field
from email import policy as email_policy
from typing import Any, Callable, Protocol

import pybase64

from gateway.mail.decoding import to_str
from gateway.mail.files import part_filename
from gateway.mail.tnef import may_be_tnef

# Past this, a header section is not "a few lines": parse the message whole.
MAX_HEADER_BLOCK = 1024 * 1024
# A boundary longer than RFC 2046's 70 characters is read by the stdlib
# parser all the same; past this it is not plausibly a boundary.
MAX_BOUNDARY = 200

_B64_TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_PARSER = email.parser.BytesParser(policy=email_policy.compat32)
# The boundaries a skeleton's multiparts are given when they are renamed
# (split(..., rename_boundaries=True)): one a depth, all of one length, so
# that none begins another.
RENAMED_BOUNDARY = b"clienttrack-skeleton-%02d"
_RENAMED_DEPTHS = 100


class Unsplittable(Exception):
    """The message is not of the shape this follows: parse it whole."""


class PartSink(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> Any:
        """What stands for the part (its sealed file) in Split.elided."""


class InMemory:
    """A sink that keeps the part's decoded bytes (parse.parse_split's, for
    a message small enough to hold): its close() gives them."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._pieces.append(data)

    def close(self) -> bytes:
        return b"".join(self._pieces)


OpenPart = Callable[[str, "str | None"], PartSink]


@dataclass
class Split:
    skeleton: bytes
    elided: dict[str, Any] = field(default_factory=dict)  # marker -> what the sink's close() gave


class _B64Stream:
    """Base64 decoded as it comes, as decoding.b64decode decodes it whole:
    up to the first "=", a lone trailing sextet dropped. It takes clean
    base64 only, and checks it as it decodes (the decoder's validating mode
    refuses any byte outside the alphabet: no pass of its own over the
    text); anything else raises Unsplittable.

    The decoder is pybase64's (SIMD), not binascii's: on the text it is given
    here (no "=", whole quads) both refuse exactly the bytes outside the
    alphabet and give the same bytes (tests/test_mail_pieces.py holds them
    to it), and binascii's strict mode took 0.77 ms for a 100 KB PDF's
    137 KB of base64, pybase64 0.012 ms."""

    def __init__(self, sink: PartSink) -> None:
        self.sink = sink
        self._rest = b""
        self._ended = False

    def feed(self, text: bytes) -> None:
        """Raises Unsplittable unless ``text`` is of the alphabet, "=" and
        line ends, and every CR and LF in it is one of a CRLF pair (then no
        line in it ends where the stdlib parser would end it otherwise)."""
        stripped = text.translate(None, b"\r\n")
        if not _lines_end_crlf(text, len(text) - len(stripped)):
            raise Unsplittable("an attachment's lines do not all end with CRLF")
        if self._ended:
            _clean(stripped)
            return
        text = self._rest + stripped
        end = text.find(b"=")
        if end >= 0:
            _clean(text[end:])  # not decoded: checked here
            text, self._ended = text[:end], True
        whole = len(text) - len(text) % 4
        if whole:
            try:
                self.sink.write(pybase64.b64decode(text[:whole], validate=True))
            except binascii.Error:
                raise Unsplittable("an attachment's base64 is not clean") from None
        self._rest = text[whole:]  # checked when decoded, by the next feed or close

    def close(self) -> Any:
        _clean(self._rest)
        rest = self._rest[:-1] if len(self._rest) % 4 == 1 else self._rest
        if rest:
            self.sink.write(pybase64.b64decode(rest + b"=" * (-len(rest) % 4), validate=True))
        return self.sink.close()


class Splitter:
    """Feed the raw message in pieces (``feed``), then ``close()`` for the
    skeleton and what was taken out. Raises Unsplittable as soon as the
    message leaves the shape above; the sinks opened so far are the
    caller's to discard (``opened``)."""

    def __init__(self, open_part: OpenPart, rename_boundaries: bool = False) -> None:
        self.open_part = open_part
        self.opened: list[PartSink] = []
        self._skeleton: list[bytes] = []
        self._elided: dict[str, Any] = {}
        self._buffer = b""
        self._boundaries: list[bytes] = []  # "--" + boundary, innermost last
        # What each of them is written as in the skeleton ("--" + its new
        # name), or None where it is kept as it is.
        self._written_as: list[bytes | None] = []
        self._rename = rename_boundaries
        self._state = "headers"  # headers | copy | base64
        self._part: _B64Stream | None = None
        self._line_start = True  # the buffer begins a line

    # -- feeding --------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        while self._step(final=False):
            pass

    def close(self) -> Split:
        while self._step(final=True):
            pass
        if self._state != "copy" or self._boundaries:
            raise Unsplittable("the message ends inside a part")
        self._skeleton.append(self._buffer)
        self._buffer = b""
        return Split(b"".join(self._skeleton), self._elided)

    def _step(self, final: bool) -> bool:
        """Take what the buffer allows; True when it should be called again."""
        if self._state == "headers":
            return self._headers(final)
        if self._state == "base64":
            return self._base64(final)
        return self._copy(final)

    # -- a part's headers -----------------------------------------------------------

    def _headers(self, final: bool) -> bool:
        buffer = self._buffer
        end = 2 if buffer.startswith(b"\r\n") else buffer.find(b"\r\n\r\n") + 4
        if end < 4 and not buffer.startswith(b"\r\n"):
            if len(buffer) > MAX_HEADER_BLOCK or final:
                raise Unsplittable("a header section does not end with an empty line")
            return False
        block, self._buffer = buffer[:end], buffer[end:]
        lines = block[:-4].split(b"\r\n") if end > 2 else []
        for number, line in enumerate(lines):
            if b"\r" in line or b"\n" in line:
                raise Unsplittable("a bare CR or LF in a header section")
            if not (_HEADER_LINE.match(line) or (number and line[:1] in (b" ", b"\t"))):
                raise Unsplittable("a line in a header section that is not a field")
        part = _PARSER.parsebytes(block, headersonly=True)
        maintype = part.get_content_maintype()
        if maintype == "multipart":
            boundary = part.get_boundary()
            if not boundary or len(boundary) > MAX_BOUNDARY:
                raise Unsplittable("a multipart without a usable boundary")
            try:
                delimiter = b"--" + boundary.encode("ascii")
            except UnicodeEncodeError:
                raise Unsplittable("a boundary that is not ASCII") from None
            renamed = self._renamed(block, delimiter[2:]) if self._rename else None
            self._boundaries.append(delimiter)
            self._written_as.append(None if renamed is None else b"--" + renamed[1])
            block = block if renamed is None else renamed[0]
            self._skeleton.append(block)
            self._state = "copy"  # its preamble
            self._line_start = True
            return True
        self._skeleton.append(block)
        if self._elidable(part, maintype):
            sink = self.open_part(part.get_content_type(), part_filename(part))
            self.opened.append(sink)
            self._part = _B64Stream(sink)
            self._state = "base64"
        else:
            self._state = "copy"
            self._line_start = True
        return True

    def _renamed(self, block: bytes, boundary: bytes) -> tuple[bytes, bytes] | None:
        """The header section with its multipart's boundary renamed (this
        depth's RENAMED_BOUNDARY), and the new name; None where the boundary
        is not written out once, plainly, as the parameter's whole value, or
        where it begins an enclosing multipart's or one begins it (then a
        line might end a part of either, and the parser's reading of it must
        stay its own). Why: the stdlib's parser compiles a regular
        expression for each multipart's boundary, unique to each message
        (0.9 M instructions, a sixth of reading a request); renamed, the
        compiled one is reused."""
        depth = len(self._boundaries)
        if depth >= _RENAMED_DEPTHS or block.count(boundary) != 1 or any(
                outer[2:].startswith(boundary) or boundary.startswith(outer[2:]) for outer in self._boundaries):
            return None
        new = RENAMED_BOUNDARY % depth
        at = block.find(boundary)
        renamed = block[:at] + new + block[at + len(boundary):]
        # The parameter reads as the new name, and so read the old name
        # whole before (the only place it was written): nothing else changed.
        if _PARSER.parsebytes(renamed, headersonly=True).get_boundary() != new.decode("ascii"):
            return None
        return renamed, new

    @staticmethod
    def _elidable(part: email.message.Message, maintype: str) -> bool:
        if maintype in ("text", "message") or may_be_tnef(part.get_content_type(), part_filename(part)):
            return False
        return to_str(part.get("content-transfer-encoding", "")).strip().lower() == "base64"

    # -- a part taken out -----------------------------------------------------------

    def _base64(self, final: bool) -> bool:
        buffer = self._buffer
        # "-" is not of base64: the first one must begin the boundary line
        # that ends the part. What comes before it the stream checks.
        at = buffer.find(b"-")
        if at < 0:
            # Base64 so far. Keep the last line end: a boundary line may
            # follow it, and the line-end check (the stream's feed) wants to see
            # the CRLF before it.
            keep = 0 if final else 2 if buffer.endswith(b"\r\n") else 1 if buffer.endswith(b"\r") else 0
            text = buffer[:len(buffer) - keep]
            self._part.feed(text)
            self._buffer = buffer[len(text):]
            if final:
                if self._boundaries:
                    raise Unsplittable("the message ends inside an attachment")
                self._end_part()
                self._state = "copy"
                return True
            return False
        if not self._boundaries or at < 2 or buffer[at - 2:at] != b"\r\n":
            raise Unsplittable("an attachment's base64 is not clean")
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            if final or len(buffer) - at > MAX_BOUNDARY + 8:
                raise Unsplittable("an attachment ends without a boundary")
            if at > 2:  # decode what is before it; wait for the boundary line
                self._part.feed(buffer[:at - 2])
                self._buffer = buffer[at - 2:]
            return False
        if not self._own_boundary(buffer[at:line_end]):
            raise Unsplittable("an attachment ends at a line that is not its boundary")
        text = buffer[:at - 2]
        self._part.feed(text)
        self._end_part()
        self._buffer = buffer[at - 2:]  # the CRLF before the boundary belongs to it
        self._state = "copy"
        return True

    def _end_part(self) -> None:
        marker = secrets.token_hex(24)
        self._elided[marker] = self._part.close()
        self._part = None
        self._skeleton.append(marker.encode("ascii") + (b"" if self._boundaries else b"\r\n"))

    def _own_boundary(self, line: bytes) -> bool:
        """Is ``line`` (without its CRLF) a delimiter of the innermost multipart?"""
        rest = line[len(self._boundaries[-1]):] if line.startswith(self._boundaries[-1]) else None
        if rest is None:
            return False
        return rest.rstrip(b" \t") in (b"", b"--")

    # -- copied as it is: preambles, epilogues, parts kept in the skeleton ------------

    def _copy(self, final: bool) -> bool:
        if not self._boundaries:  # the top level's only part, or after the outermost's end
            self._skeleton.append(self._buffer)
            self._buffer = b""
            return False
        found = self._next_boundary(final)
        if found is None:
            return False
        start, end, closing = found
        written_as = self._written_as[-1]
        if written_as is None:
            self._skeleton.append(self._buffer[:end])
        else:  # the delimiter line under the multipart's new name (its rest as it was)
            self._skeleton.append(self._buffer[:start] + written_as
                                  + self._buffer[start + len(self._boundaries[-1]):end])
        self._buffer = self._buffer[end:]
        self._line_start = True
        if closing:
            self._boundaries.pop()
            self._written_as.pop()
            self._state = "copy"  # the epilogue
        else:
            self._state = "headers"
        return True

    def _next_boundary(self, final: bool) -> tuple[int, int, bool] | None:
        """The next line (at the start, or after CR or LF: the stdlib parser
        splits lines at any of them) that is a boundary of an enclosing
        multipart: (where it begins, where it ends, with its line end;
        whether it closes the innermost). Another multipart's boundary there
        is a shape this does not follow. What cannot hold one goes to the skeleton as it is;
        only a line that may yet become a boundary is kept waiting."""
        buffer = self._buffer
        position = 0
        while True:
            at = buffer.find(b"--", position)
            if at < 0:
                if final:
                    raise Unsplittable("a multipart does not end")
                self._flush_to(self._waiting_tail(buffer))
                return None
            position = at + 2
            if not (buffer[at - 1:at] in (b"\r", b"\n") if at else self._line_start):
                continue
            eol = _line_end(buffer, at)
            if eol is None and not final:
                self._flush_to(at)
                if len(self._buffer) > MAX_HEADER_BLOCK:
                    raise Unsplittable("a line too long to be a boundary")
                return None
            line, end = (buffer[at:], len(buffer)) if eol is None else (buffer[at:eol[0]], eol[1])
            for depth, boundary in enumerate(reversed(self._boundaries)):
                if line.startswith(boundary) and line[len(boundary):].rstrip(b" \t") in (b"", b"--"):
                    if depth:
                        raise Unsplittable("an outer boundary inside a part")
                    return at, end, line[len(boundary):].rstrip(b" \t") == b"--"

    def _waiting_tail(self, buffer: bytes) -> int:
        """Where the part of ``buffer`` that may still begin a boundary line
        starts (a lone "-" at a line start), else its end."""
        start = max(buffer.rfind(b"\r"), buffer.rfind(b"\n")) + 1
        at_line_start = start > 0 or self._line_start
        return start if at_line_start and buffer[start:] in (b"", b"-") else len(buffer)

    def _flush_to(self, keep: int) -> None:
        """Everything before ``keep`` to the skeleton, as it is."""
        buffer = self._buffer
        if keep:
            self._skeleton.append(buffer[:keep])
            self._line_start = buffer[keep - 1:keep] in (b"\r", b"\n")
            self._buffer = buffer[keep:]


def _clean(text: bytes) -> None:
    if text.translate(None, _B64_TEXT):
        raise Unsplittable("an attachment's base64 is not clean")


def _lines_end_crlf(text: bytes, line_ends: int) -> bool:
    """Is each of the ``line_ends`` CRs and LFs in ``text`` one of a CRLF pair?
    Base64 comes in lines of one length, so first try the CRLFs a line
    apart (a slice each for their CRs and LFs) and those in what is left
    after the last of them (less than a line): when these pairs account for
    all the line ends, that is the answer without a pass over the text.
    Else one count of CRLF settles it (pairs cannot overlap)."""
    first = text.find(b"\r\n")
    if first < 0:
        return line_ends == 0
    step = text.find(b"\r\n", first + 2) - first
    if step > 0:
        crs, lfs = text[first::step], text[first + 1::step]
        if len(crs) == len(lfs) and crs.count(b"\r") == len(crs) and lfs.count(b"\n") == len(lfs):
            rest = text[first + (len(crs) - 1) * step + 2:]
            if line_ends == 2 * (len(crs) + rest.count(b"\r\n")):
                return True
    return line_ends == 2 * text.count(b"\r\n")


def _line_end(buffer: bytes, start: int) -> tuple[int, int] | None:
    """The first line end (CRLF, CR or LF) from ``start``: (where it
    begins, where it ends); None when it may still be coming."""
    cr, lf = buffer.find(b"\r", start), buffer.find(b"\n", start)
    if lf >= 0 and (cr < 0 or lf < cr):
        return lf, lf + 1
    if cr < 0:
        return None
    if cr + 1 == len(buffer):
        return None  # a CR at the end: it may be a CRLF
    return cr, cr + (2 if buffer[cr + 1:cr + 2] == b"\n" else 1)


def split(raw: bytes, open_part: OpenPart) -> Split:
    """A message in memory, split (raises Unsplittable); its multiparts'
    boundaries renamed in the skeleton (Splitter._renamed) unless the
    message holds the names they would be given."""
    splitter = Splitter(open_part, rename_boundaries=RENAMED_BOUNDARY[:-4] not in raw)
    splitter.feed(raw)
    return splitter.close()
