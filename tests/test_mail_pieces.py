"""pieces.py: a message with its attachments taken out as it streams past
reads, through parse.parse, exactly as the whole message does; and what it
cannot follow it refuses (Unsplittable), so the caller parses it whole."""

from __future__ import annotations

import base64
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.mail.parse import parse
from gateway.mail.pieces import Splitter, Unsplittable, split
from tests.test_mailparse import SAMPLES, as_bytes, outlook_tnef_mail, staff_mail

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

PDF = b"%PDF-1.4\n" + os.urandom(150_000) + b"\n%%EOF\n"


class Taken:
    def __init__(self, content_type: str, filename: str | None) -> None:
        self.content_type, self.filename = content_type, filename
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data

    def close(self) -> "Taken":
        self.closed = True
        return self

    @property
    def size(self) -> int:
        return len(self.data)


def split_in(raw: bytes, piece: int, rename: bool = False):
    opened: list[Taken] = []

    def open_part(content_type, filename):
        opened.append(Taken(content_type, filename))
        return opened[-1]

    splitter = Splitter(open_part, rename_boundaries=rename)
    for start in range(0, len(raw), piece):
        splitter.feed(raw[start:start + piece])
    return splitter.close(), opened


def assert_reads_the_same(raw: bytes, pieces=(len, 1, 7, 4096, 65536), taken_out: int | None = None) -> None:
    whole = parse(raw)
    for size, rename in [(size, rename) for size in pieces for rename in (False, True)]:
        result, opened = split_in(raw, size(raw) if callable(size) else size, rename)
        assert all(t.closed for t in opened)
        parsed = parse(result.skeleton, result.elided)
        assert (parsed.subject, parsed.message_id, parsed.text, parsed.auto_submitted, parsed.precedence) == \
               (whole.subject, whole.message_id, whole.text, whole.auto_submitted, whole.precedence)
        got = [(a.filename, a.content_type, bytes(a.sealed.data) if a.sealed is not None else a.data)
               for a in parsed.attachments]
        assert got == [(a.filename, a.content_type, a.data) for a in whole.attachments]
        if taken_out is not None:
            assert sum(a.sealed is not None for a in parsed.attachments) == taken_out
            assert len(result.skeleton) < len(raw) or not taken_out


def request(*attachments: tuple[str, str, bytes], html: str | None = None) -> EmailMessage:
    message = staff_mail()
    message.set_content("Hello,\nthe invoice is attached.\n")
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def test_a_pdf_is_taken_out_and_reads_the_same():
    assert_reads_the_same(as_bytes(request(("invoice.pdf", "application/pdf", PDF)), crlf=True), taken_out=1)


def test_several_attachments_in_nested_multiparts():
    message = request(("a.pdf", "application/pdf", PDF), ("b.png", "image/png", os.urandom(3000)),
                      ("c.csv", "text/csv", b"a,b\r\n1,2\r\n"), ("d.zip", "application/zip", b""),
                      html="<p>Hello <b>there</b></p>")
    assert_reads_the_same(as_bytes(message, crlf=True), taken_out=3)  # the CSV (text/*) stays in


def test_an_inline_image_the_html_shows_is_still_not_an_attachment():
    message = staff_mail()
    message.set_content("Hello")
    message.add_alternative('<p>Logo: <img src="cid:logo@firm"></p>', subtype="html")
    message.get_payload()[1].add_related(os.urandom(5000), maintype="image", subtype="png", cid="<logo@firm>")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="x.pdf")
    assert_reads_the_same(as_bytes(message, crlf=True))


def test_non_ascii_and_rfc_2231_file_names():
    message = request(("Facture été 2026 — n°5.pdf", "application/pdf", PDF))
    assert_reads_the_same(as_bytes(message, crlf=True), taken_out=1)


def test_a_message_that_is_only_a_pdf():
    raw = (b"From: a@firm.example\r\nSubject: scan\r\nMIME-Version: 1.0\r\nContent-Type: application/pdf; name=s.pdf\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PDF).replace(b"\n", b"\r\n"))
    assert_reads_the_same(raw, taken_out=1)


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.dat")))
def test_winmail_dat_stays_in_and_reads_the_same(sample):
    raw = outlook_tnef_mail((SAMPLES / sample).read_bytes())
    assert_reads_the_same(raw, taken_out=0)


def test_a_forwarded_message_stays_whole_inside():
    inner = request(("inner.pdf", "application/pdf", PDF))
    outer = staff_mail(Subject="Fwd: invoice")
    outer.set_content("See below.")
    outer.add_attachment(inner)
    assert_reads_the_same(as_bytes(outer, crlf=True), taken_out=0)


def test_preamble_epilogue_spaces_after_boundaries_and_dashes_in_text():
    b64 = base64.encodebytes(PDF).replace(b"\n", b"\r\n")
    raw = (b"From: a@firm.example\r\nSubject: odd\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n'
           b"preamble line\r\n--BBnot a boundary\r\n\r\n"
           b"--BB  \r\nContent-Type: text/plain\r\n\r\n-- \r\nsignature\r\n--B\r\n---BB\r\n"
           b"--BB\t\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
           b"Content-Disposition: attachment; filename=p.pdf\r\n\r\n" + b64 +
           b"--BB-- \r\nepilogue\r\n--BB\r\nstill epilogue\r\n")
    assert_reads_the_same(raw, taken_out=1)


@pytest.mark.parametrize("damage", ["junk in base64", "LF line ends", "no closing boundary", "bare CR in headers",
                                    "outer boundary inside", "not a field in headers"])
def test_what_it_cannot_follow_is_refused(damage):
    b64 = base64.encodebytes(PDF[:5000]).replace(b"\n", b"\r\n")
    head = b"From: a@firm.example\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
    part = b"--X\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    raw = {
        "junk in base64": head + part + b64[:300] + b"*" + b64[300:] + b"--X--\r\n",
        "LF line ends": head + part + b64.replace(b"\r\n", b"\n") + b"--X--\r\n",
        "no closing boundary": head + part + b64,
        "bare CR in headers": head + b"--X\r\nContent-Type: application/pdf\rX: y\r\n\r\n" + b64 + b"--X--\r\n",
        "outer boundary inside": head + b"--X\r\nContent-Type: multipart/mixed; boundary=Y\r\n\r\n--Y\r\n"
                                 b"Content-Type: text/plain\r\n\r\nhi\r\n--X--\r\n",
        "not a field in headers": head + b"--X\r\nContent-Type: application/pdf\r\nnot a field\r\n\r\n" + b64
                                  + b"--X--\r\n",
    }[damage]
    with pytest.raises(Unsplittable):
        split(raw, lambda content_type, filename: Taken(content_type, filename))
    parse(raw)  # the whole message still parses


def test_a_large_attachment_is_decoded_as_it_streams():
    data = os.urandom(3_000_000)
    raw = as_bytes(request(("big.bin", "application/octet-stream", data)), crlf=True)
    biggest = 0

    class Watching(Taken):
        def write(self, piece: bytes) -> None:
            nonlocal biggest
            biggest = max(biggest, len(piece))
            super().write(piece)

    splitter = Splitter(lambda content_type, filename: Watching(content_type, filename))
    for start in range(0, len(raw), 65536):
        splitter.feed(raw[start:start + 65536])
    result = splitter.close()
    [taken] = result.elided.values()
    assert bytes(taken.data) == data and biggest <= 65536 and len(result.skeleton) < 2000


def test_the_test_samples_folder_exists():
    assert Path(SAMPLES).is_dir()


def test_damaged_messages_are_refused_or_read_the_same():
    """Bytes that matter to MIME (line ends, dashes, boundaries, padding)
    put in at random: either it is refused, or it reads the same."""
    import random

    rng = random.Random(18)
    message = request(("a.pdf", "application/pdf", PDF[:20_000]), ("b.bin", "application/octet-stream", b"x" * 900),
                      html="<p>hi</p>")
    base = as_bytes(message, crlf=True)
    boundary = message.get_boundary().encode()
    inserts = [b"\r", b"\n", b"\r\n", b"-", b"--", b"--" + boundary, b"\r\n--" + boundary + b"\r\n",
               b"\r\n--" + boundary + b"--\r\n", b"=", b" ", b"\r\n\r\n", b"Content-Type: text/plain\r\n", b"*"]
    refused = read_same = 0
    for _ in range(400):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(raw))
            raw[at:at] = rng.choice(inserts)
        raw = bytes(raw)
        try:
            split(raw, lambda content_type, filename: Taken(content_type, filename))
        except Unsplittable:
            refused += 1
            continue
        assert_reads_the_same(raw, pieces=(len, 3, 1000))
        read_same += 1
    assert refused > 50 and read_same > 50  # both ways were exercised


def test_parse_split_reads_every_message_as_parse_does():
    """The runner parses a small message with parse_split (its base64
    attachments decoded by the splitter, in memory): the same ParsedMail as
    parse, attachments' bytes included, whether it splits or not."""
    import random

    from gateway.mail.parse import parse_split

    messages = [
        as_bytes(request(("invoice.pdf", "application/pdf", PDF)), crlf=True),
        as_bytes(request(("a.pdf", "application/pdf", PDF[:5000]), ("b.png", "image/png", b"\x89PNG" + PDF[:900]),
                         html="<p>hi <img src='cid:x'></p>"), crlf=True),
        as_bytes(request(("Reçu été.pdf", "application/pdf", PDF[:3000])), crlf=True),
        as_bytes(request(), crlf=True),  # nothing to take out
        as_bytes(request(("a.pdf", "application/pdf", PDF[:3000])), crlf=False),  # LF line ends: parsed whole
    ] + [outlook_tnef_mail(sample.read_bytes()) for sample in sorted(SAMPLES.glob("*.dat"))[:2]] + [
        as_bytes(request(("x.pdf", "application/pdf", PDF[:n])), crlf=True) for n in (0, 1, 2, 3, 57, 58, 59)]
    rng = random.Random(1818)
    base = messages[1]
    for _ in range(150):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(raw))
            raw[at:at] = rng.choice([b"\r", b"\n", b"-", b"--", b"=", b" ", b"\r\n\r\n", b"*"])
        messages.append(bytes(raw))
    for raw in messages:
        whole, split_first = parse(raw), parse_split(raw)
        assert split_first == whole
        assert [a.data for a in split_first.attachments] == [a.data for a in whole.attachments]
        assert all(a.sealed is None for a in split_first.attachments)


def _pdf_part_message(b64: bytes) -> bytes:
    return (b"From: a@firm.example\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
            b"--X\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            b"--X\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=p.pdf\r\n\r\n" + b64 + b"--X--\r\n")


@pytest.mark.parametrize("where", ["CR inside a line", "LF inside a line", "CR before a CRLF", "LF after a CRLF",
                                   "CR at a line's end", "LF at a line's end", "CR in the last line",
                                   "LF in the first line"])
def test_a_bare_cr_or_lf_in_the_base64_is_refused(where):
    """The splitter follows base64 whose lines all end CRLF, and nothing
    else: a bare CR or LF anywhere in it (where the stdlib's parser would
    see a line end of its own) makes the message Unsplittable, in whatever
    pieces it comes, and it is then parsed whole, reading as it always did."""
    lines = base64.encodebytes(PDF[:20_000]).split(b"\n")[:-1]
    crlf = b"\r\n".join(lines) + b"\r\n"
    middle = len(lines) // 2 * 78  # the start of a line
    b64 = {
        "CR inside a line": crlf[:middle + 30] + b"\r" + crlf[middle + 30:],
        "LF inside a line": crlf[:middle + 30] + b"\n" + crlf[middle + 30:],
        "CR before a CRLF": crlf[:middle - 2] + b"\r" + crlf[middle - 2:],
        "LF after a CRLF": crlf[:middle] + b"\n" + crlf[middle:],
        "CR at a line's end": crlf[:middle - 2] + b"\r" + crlf[middle:],
        "LF at a line's end": crlf[:middle - 2] + b"\n" + crlf[middle:],
        "CR in the last line": crlf[:-4] + b"\r" + crlf[-4:],
        "LF in the first line": crlf[:10] + b"\n" + crlf[10:],
    }[where]
    raw = _pdf_part_message(b64)
    for piece in (len(raw), 1, 7, 4096):
        with pytest.raises(Unsplittable):
            split_in(raw, piece)
    from gateway.mail.parse import parse_split
    assert parse_split(raw) == parse(raw)
    assert parse(raw).attachments[0].data == PDF[:20_000]


def test_base64_lines_of_uneven_length_are_taken_out():
    """Lines of any length, as long as each ends CRLF: taken out, read the same."""
    data = PDF[:30_000]
    b64 = base64.b64encode(data)
    lines, at, width = [], 0, 1
    while at < len(b64):
        lines.append(b64[at:at + width])
        at, width = at + width, width % 97 + 3
    raw = _pdf_part_message(b"\r\n".join(lines) + b"\r\n")
    assert_reads_the_same(raw, taken_out=1)
    [taken] = split(raw, lambda content_type, filename: Taken(content_type, filename)).elided.values()
    assert bytes(taken.data) == data


def test_base64_is_taken_out_exactly_when_every_cr_and_lf_is_in_a_crlf():
    """Base64 in lines of one length or of many, with CR, LF, CRLF and LF CR
    put in at random, fed in pieces of any size: refused exactly when some
    CR or LF in it is not one of a CRLF pair, and read the same otherwise."""
    import random

    rng = random.Random(2318)
    refused = taken = 0
    for trial in range(300):
        data = rng.randbytes(rng.randrange(0, 4000))
        b64 = base64.b64encode(data)
        width = rng.choice([76, 64, 4, rng.randrange(1, 120)])
        lines = [b64[at:at + width] for at in range(0, len(b64), width)]
        text = bytearray(b"\r\n".join(lines) + b"\r\n")
        for _ in range(rng.choice([0, 0, 1, 2])):
            at = rng.randrange(len(text) + 1)
            text[at:at] = rng.choice([b"\r", b"\n", b"\r\n", b"\n\r"])
        text = bytes(text)
        crlf_only = text.count(b"\r") == text.count(b"\n") == text.count(b"\r\n")
        raw = _pdf_part_message(text)
        for piece in (len(raw), rng.randrange(1, 300), 4096):
            if crlf_only:
                result, opened = split_in(raw, piece)
                [part] = result.elided.values()
                assert bytes(part.data) == data
            else:
                with pytest.raises(Unsplittable):
                    split_in(raw, piece)
        refused, taken = refused + (not crlf_only), taken + crlf_only
    assert refused > 50 and taken > 50


@pytest.mark.parametrize("junk", [b"*", b" ", b"\t", b"-", b"\x00", b"\xff", b".", b"*. \xff"])  # the last keeps quads whole
@pytest.mark.parametrize("where", ["first", "inside a line", "at a line's end", "before the padding", "after the padding",
                                   "in the last quad", "after the last line", "at a line's start"])
def test_a_byte_outside_base64_anywhere_in_the_part_is_refused(junk, where):
    """A byte that is neither of the base64 alphabet, '=' nor a CRLF, anywhere
    in a part taken out (before its padding, after it, in an unpadded last
    quad): Unsplittable in pieces of any size, and then read whole."""
    data = PDF[:3001]  # base64 ends "=="
    lines = base64.encodebytes(data).split(b"\n")[:-1]
    if where == "in the last quad":  # padding left out, as some mailers do
        lines[-1] = lines[-1].rstrip(b"=")
    crlf = b"\r\n".join(lines) + b"\r\n"
    pad = crlf.index(b"=") if b"=" in crlf else len(crlf) - 2
    b64 = {
        "first": junk + crlf,
        "inside a line": crlf[:200] + junk + crlf[200:],
        "at a line's end": crlf[:76] + junk + crlf[76:],
        "before the padding": crlf[:pad] + junk + crlf[pad:],
        "after the padding": crlf[:-2] + junk + crlf[-2:],
        "in the last quad": crlf[:-3] + junk + crlf[-3:],
        "after the last line": crlf + junk + b"\r\n",
        "at a line's start": crlf[:78] + junk + crlf[78:],
    }[where]
    raw = _pdf_part_message(b64)
    for piece in (len(raw), 1, 7, 4096):
        with pytest.raises(Unsplittable):
            split_in(raw, piece)
    from gateway.mail.parse import parse_split
    assert parse_split(raw) == parse(raw)


@pytest.mark.parametrize("shape", ["unpadded", "more after the padding", "a lone last sextet"])
def test_clean_base64_of_odd_shapes_is_taken_out_and_reads_the_same(shape):
    data = PDF[:3001]
    b64 = base64.b64encode(data)
    b64 = {"unpadded": b64.rstrip(b"="), "more after the padding": b64 + base64.b64encode(b"more"),
           "a lone last sextet": b64.rstrip(b"=") + b"Q"}[shape]
    raw = _pdf_part_message(b"\r\n".join(b64[at:at + 76] for at in range(0, len(b64), 76)) + b"\r\n")
    assert_reads_the_same(raw, taken_out=1)


def test_each_byte_value_in_the_base64_is_taken_out_or_refused_as_binascii_strict_decides():
    """Every one of the 256 byte values put in a line of the part, where the
    decoder (pybase64's SIMD one) checks it: a letter of the alphabet is
    taken out and decoded as binascii decodes it (and as the whole parse
    reads it); "=" ends the data there; any other byte (CR and LF alone
    too) makes the message Unsplittable, and it is then read whole."""
    import binascii

    from gateway.mail.parse import parse_split

    data = PDF[:3000]  # whole quads: no padding
    crlf = base64.encodebytes(data).replace(b"\n", b"\r\n")
    at = 78 * 10 + 41  # in the 11th line, the second letter of its 11th quad
    for value in range(256):
        b64 = crlf[:at] + bytes([value]) + crlf[at + 1:]
        raw = _pdf_part_message(b64)
        if value in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=":
            [part] = split(raw, lambda content_type, filename: Taken(content_type, filename)).elided.values()
            if value == ord("="):  # the 200 quads before it; its quad's lone sextet dropped
                assert bytes(part.data) == data[:600]
            else:
                assert bytes(part.data) == binascii.a2b_base64(b64.replace(b"\r\n", b""), strict_mode=True)
            assert bytes(part.data) == parse(raw).attachments[0].data
        else:
            with pytest.raises(Unsplittable):
                split(raw, lambda content_type, filename: Taken(content_type, filename))
            assert parse_split(raw) == parse(raw)


def test_the_skeletons_multiparts_are_renamed_one_name_a_depth_and_read_the_same():
    # The stdlib's parser compiles a regular expression for each boundary:
    # a message's own, unique, cost a sixth of reading a request.
    nested = request(("a.pdf", "application/pdf", PDF[:5000]), html="<p>hi</p>")
    skeletons = []
    for message in (request(("invoice.pdf", "application/pdf", PDF)), nested):
        raw = as_bytes(message, crlf=True)
        result = split(raw, lambda content_type, filename: Taken(content_type, filename))
        assert b'boundary="clienttrack-skeleton-00"' in result.skeleton
        assert message.get_boundary().encode() not in result.skeleton
        assert result.skeleton.count(b"\r\n--clienttrack-skeleton-00") == len(message.get_payload()) + 1
        skeletons.append(result.skeleton)
        assert_reads_the_same(raw, taken_out=1)
    assert b'boundary="clienttrack-skeleton-01"' in skeletons[1]  # multipart/alternative inside the mixed


def test_a_message_holding_the_new_names_a_boundary_written_twice_or_one_begun_by_an_outer_keeps_its_own():
    holding = request(("a.pdf", "application/pdf", PDF[:5000]))
    holding.get_payload()[0].set_content("see clienttrack-skeleton-00 below\n")
    twice = (b"From: a@firm.example\r\nSubject: x\r\n"
             b"Content-Type: multipart/mixed; boundary=\"XyZ\"; note=\"XyZ\"\r\n\r\n"
             b"--XyZ\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
             b"--XyZ\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
             + base64.encodebytes(PDF[:3000]).replace(b"\n", b"\r\n") + b"--XyZ--\r\n")
    inside = (b"From: a@firm.example\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=\"Out\"\r\n\r\n"
              b"--Out\r\nContent-Type: multipart/alternative; boundary=\"Out-in\"\r\n\r\n"
              b"--Out-in\r\nContent-Type: text/plain\r\n\r\nhello\r\n--Out-in--\r\n"
              b"--Out\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              + base64.encodebytes(PDF[:3000]).replace(b"\n", b"\r\n") + b"--Out--\r\n")
    result = split(inside, lambda content_type, filename: Taken(content_type, filename))
    assert b"--clienttrack-skeleton-00\r\n" in result.skeleton and b"--Out-in\r\n" in result.skeleton
    for raw, boundary in ((as_bytes(holding, crlf=True), holding.get_boundary().encode()), (twice, b"XyZ"),
                          (inside, b"Out-in")):
        result = split(raw, lambda content_type, filename: Taken(content_type, filename))
        assert b"--" + boundary + b"\r\n" in result.skeleton and result.elided
        assert_reads_the_same(raw, taken_out=1)
