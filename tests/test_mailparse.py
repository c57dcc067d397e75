"""Tests for gateway.mail.parse: reading staff email exactly."""

from __future__ import annotations

import base64
import email
import unicodedata
from email import policy
from email.message import EmailMessage
from pathlib import Path

import mailparser
import pytest

from gateway.mail.decoding import scrub
from gateway.mail.files import safe_filename
from gateway.mail.htmltext import html_to_text
from gateway.mail import parse as parse_module
from gateway.mail.parse import Attachment, ParsedMail, parse

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

SAMPLES = Path(__file__).resolve().parent / "data" / "tnef"

# A small PDF-like byte string: binary bytes, NUL, CR/LF and a trailing NUL.
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\r\n\x00\xff\xfe binary\nstartxref\n0\n%%EOF\n\x00"


def as_bytes(msg: EmailMessage, crlf: bool = False) -> bytes:
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n" if crlf else "\n"))


def staff_mail(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Alice Martin <Alice.Martin@Firm.example>")
    msg["To"] = "gateway@clienttrack.example"
    msg["Subject"] = headers.pop("Subject", "PAY 1042 client=ACME")
    msg["Message-ID"] = headers.pop("Message_ID", "<m1@firm.example>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def outlook_tnef_mail(tnef: bytes, body: str | None = "See attached.\r\n") -> bytes:
    """Wrap a winmail.dat the way Outlook sends it."""
    encoded = base64.encodebytes(tnef).replace(b"\n", b"\r\n")
    parts = [
        b"From: Bob <bob@firm.example>\r\n"
        b"To: gateway@clienttrack.example\r\n"
        b"Subject: invoice\r\n"
        b"Message-ID: <tnef@firm.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="----_=_NextPart_000_01"\r\n'
        b"\r\n"
        b"This is a multi-part message in MIME format.\r\n"
        b"\r\n"
    ]
    if body is not None:
        parts.append(
            b"------_=_NextPart_000_01\r\n"
            b'Content-Type: text/plain; charset="iso-8859-1"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n"
            b"\r\n" + body.encode("ascii") + b"\r\n"
        )
    parts.append(
        b"------_=_NextPart_000_01\r\n"
        b'Content-Type: application/ms-tnef; name="winmail.dat"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="winmail.dat"\r\n'
        b"\r\n" + encoded + b"\r\n"
        b"------_=_NextPart_000_01--\r\n"
    )
    return b"".join(parts)


def names(mail: ParsedMail) -> list[str]:
    return [a.filename for a in mail.attachments]


# --------------------------------------------------------------------------
# Bodies and attachments
# --------------------------------------------------------------------------


def test_plain_text_with_pdf_attachment_bytes_identical():
    msg = staff_mail()
    msg.set_content("Please send invoice 1042 to ACME.\nAmount: 1200.00 EUR\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice-1042.pdf")

    mail = parse(as_bytes(msg))

    assert mail.text == "Please send invoice 1042 to ACME.\nAmount: 1200.00 EUR\n"
    assert mail.attachments == (Attachment("invoice-1042.pdf", "application/pdf", PDF),)
    assert mail.subject == "PAY 1042 client=ACME"


def test_html_only_body_is_rendered_to_text():
    msg = staff_mail()
    msg.set_content(
        "<html><head><title>ignored</title><style>p {color: red}</style></head>"
        "<body><p>Hello&nbsp;<b>World</b> &amp; caf&eacute;</p>"
        "<p>Line&nbsp;1<br>Line 2<br/>Line\n   3</p>"
        "<script>alert('x')</script><div>Total: 1 200 &euro;</div></body></html>",
        subtype="html",
    )

    mail = parse(as_bytes(msg))

    assert mail.text == "Hello World & café\n\nLine 1\nLine 2\nLine 3\n\nTotal: 1 200 €"
    assert mail.attachments == ()


def test_html_to_text_details():
    assert html_to_text("a<br>b") == "a\nb"
    assert html_to_text("<p>one</p><p>two</p>") == "one\n\ntwo"
    assert html_to_text("&lt;tag&gt; &quot;q&quot; &#233;&#x20AC;") == '<tag> "q" é€'
    assert html_to_text("<pre>a  b\n  c</pre>") == "a  b\nc"


def test_alternative_with_inline_cid_logo_and_real_attachment():
    msg = staff_mail()
    msg.set_content("Invoice attached.\n-- \nAlice\n")
    msg.add_alternative(
        '<p>Invoice attached.</p><p>-- <br><img src="cid:image001.png@01DA0000.12345670"> Alice</p>',
        subtype="html",
    )
    html_part = msg.get_payload()[1]
    html_part.add_related(
        b"\x89PNG\r\n\x1a\nlogo", maintype="image", subtype="png",
        cid="<image001.png@01DA0000.12345670>", filename="image001.png",
        disposition="inline",  # as Outlook sends signature logos
    )
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Facture.pdf")

    mail = parse(as_bytes(msg))

    assert mail.text == "Invoice attached.\n-- \nAlice\n"
    assert mail.attachments == (Attachment("Facture.pdf", "application/pdf", PDF),)


def test_cid_image_is_an_attachment_when_disposition_attachment_or_unreferenced():
    raw = (
        b"From: a@firm.example\n"
        b"Subject: x\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/related; boundary="B"\n\n'
        b"--B\n"
        b"Content-Type: text/html; charset=utf-8\n\n"
        b'<img src="cid:logo%40x"><img src="cid:scan@x">\n'
        b"--B\n"
        b"Content-Type: image/png\n"
        b"Content-ID: <logo@x>\n"
        b"Content-Transfer-Encoding: base64\n\n"
        b"bG9nbw==\n"
        b"--B\n"
        b"Content-Type: image/jpeg; name=scan.jpg\n"
        b"Content-ID: <scan@x>\n"
        b"Content-Disposition: attachment; filename=scan.jpg\n"
        b"Content-Transfer-Encoding: base64\n\n"
        b"c2Nhbg==\n"
        b"--B\n"
        b"Content-Type: image/gif\n"
        b"Content-ID: <unused@x>\n"
        b"Content-Transfer-Encoding: base64\n\n"
        b"Z2lm\n"
        b"--B--\n"
    )
    mail = parse(raw)
    assert [(a.filename, a.content_type, a.data) for a in mail.attachments] == [
        ("scan.jpg", "image/jpeg", b"scan"),
        ("attachment-2.gif", "image/gif", b"gif"),
    ]


def test_named_text_part_is_an_attachment_and_body_is_not():
    msg = staff_mail()
    msg.set_content("body text\n")
    msg.add_attachment("col1;col2\n1;2\n", filename="export.csv", subtype="csv")
    mail = parse(as_bytes(msg))
    assert mail.text == "body text\n"
    assert names(mail) == ["export.csv"]
    assert mail.attachments[0].content_type == "text/csv"
    assert mail.attachments[0].data == b"col1;col2\n1;2\n"


# --------------------------------------------------------------------------
# Outlook winmail.dat (TNEF)
# --------------------------------------------------------------------------

TNEF_SAMPLES = {
    "winmail-one-file.dat": [("AUTHORS", 244)],
    "winmail-two-files.dat": [("AUTHORS", 244), ("README", 893)],
    "winmail-umlaut.dat": [
        ("TBZ PARIV GmbH.jpg", 44764),
        ("image003.jpg", 1001),
        ("UmlautAnhang-äüö.txt", 14),
    ],
    "winmail-long-filename.dat": [("allproductsmar2000.dat", 279)],
}


@pytest.mark.parametrize("sample", sorted(TNEF_SAMPLES))
def test_winmail_dat_samples_are_unpacked(sample):
    tnef = (SAMPLES / sample).read_bytes()

    mail = parse(outlook_tnef_mail(tnef))

    assert [(a.filename, len(a.data)) for a in mail.attachments] == TNEF_SAMPLES[sample]
    assert "winmail.dat" not in names(mail)
    assert mail.text == "See attached.\n"
    for a in mail.attachments:
        assert a.data in tnef  # bytes taken verbatim from the TNEF stream
        assert unicodedata.is_normalized("NFC", a.filename)


def test_winmail_umlaut_names_and_types():
    mail = parse(outlook_tnef_mail((SAMPLES / "winmail-umlaut.dat").read_bytes()))
    by_name = {a.filename: a for a in mail.attachments}
    assert by_name["UmlautAnhang-äüö.txt"].content_type == "text/plain"
    assert by_name["TBZ PARIV GmbH.jpg"].content_type == "image/jpeg"
    assert by_name["image003.jpg"].data.startswith(b"\xff\xd8")  # JPEG


def test_tnef_body_used_when_message_has_no_text_body():
    tnef = (SAMPLES / "winmail-long-filename.dat").read_bytes()
    mail = parse(outlook_tnef_mail(tnef, body=None))
    assert mail.text.startswith("I've attached a temp. license for QARun 4.7.")
    assert "\r" not in mail.text
    assert names(mail) == ["allproductsmar2000.dat"]


def test_tnef_body_does_not_replace_message_body():
    tnef = (SAMPLES / "winmail-long-filename.dat").read_bytes()
    mail = parse(outlook_tnef_mail(tnef, body="Outer body"))
    assert mail.text == "Outer body"


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(b"this is not TNEF at all", id="garbage"),
        pytest.param((SAMPLES / "winmail-two-files.dat").read_bytes()[:1500], id="truncated"),
        pytest.param(
            (lambda d: d[:3000] + bytes([d[3000] ^ 0xFF]) + d[3001:])(
                (SAMPLES / "winmail-two-files.dat").read_bytes()
            ),
            id="bad-checksum",
        ),
        pytest.param(b"\x78\x9f\x3e\x22\x01\x00", id="empty"),
    ],
)
def test_corrupt_tnef_is_kept_as_winmail_dat(corrupt):
    mail = parse(outlook_tnef_mail(corrupt))
    assert mail.attachments == (Attachment("winmail.dat", "application/ms-tnef", corrupt),)
    assert mail.text == "See attached.\n"


# --------------------------------------------------------------------------
# Encoded names and subjects
# --------------------------------------------------------------------------

ENCODED_NAMES = (
    b"From: a@firm.example\n"
    b"Subject: =?utf-8?q?Facture_n=C2=B0_1042_=E2=80=94?=\n"
    b" =?utf-8?q?_=C3=A9t=C3=A9?=\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="B"\n\n'
    b"--B\n"
    b"Content-Type: text/plain; charset=utf-8\n\n"
    b"body\n"
    b"--B\n"
    b"Content-Type: application/pdf\n"
    b"Content-Disposition: attachment;\n"
    b" filename*0*=utf-8''Facture_%C3%A9;\n"
    b" filename*1*=t%C3%A9_2026.pdf\n"
    b"Content-Transfer-Encoding: base64\n\n"
    b"JVBERi0xLjQK\n"
    b"--B\n"
    b'Content-Type: application/pdf; name="=?utf-8?b?6KuL5rGC5pu4LnBkZg==?="\n'
    b'Content-Disposition: attachment; filename="=?utf-8?b?6KuL5rGC5pu4LnBkZg==?="\n'
    b"Content-Transfer-Encoding: base64\n\n"
    b"JVBERi0xLjcK\n"
    b"--B\n"
    b"Content-Type: application/pdf\n"
    b"Content-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.pdf\n\n"
    b"%PDF\n"
    b"--B\n"
    b"Content-Type: application/pdf\n"
    b"Content-Disposition: attachment; filename=\"=?iso-8859-1?q?Re=E7u?=\n"
    b" =?iso-8859-1?q?_2026.pdf?=\"\n\n"
    b"%PDF\n"
    b"--B--\n"
)


def test_rfc2231_continuations_and_rfc2047_file_names_and_subject():
    mail = parse(ENCODED_NAMES)
    assert names(mail) == ["Facture_été_2026.pdf", "請求書.pdf", "résumé.pdf", "Reçu 2026.pdf"]
    assert [a.data for a in mail.attachments[:2]] == [b"%PDF-1.4\n", b"%PDF-1.7\n"]
    assert mail.subject == "Facture n° 1042 — été"


def test_non_ascii_names_and_subject_built_by_email_message():
    msg = staff_mail(Subject="Facture n° 1042 — été " + "très long " * 12)
    msg.set_content("x")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Facture_été_2026.pdf")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="請求書" * 30 + ".pdf")
    mail = parse(as_bytes(msg))
    assert mail.subject == ("Facture n° 1042 — été " + "très long " * 12).strip()
    # 274 UTF-8 bytes: clamped to 255 at a character boundary, extension kept
    assert names(mail) == ["Facture_été_2026.pdf", "請求書" * 27 + "請求" + ".pdf"]
    assert len(names(mail)[1].encode()) == 253


def test_eight_bit_and_unquoted_file_names():
    raw = (
        "From: a@firm.example\nSubject: x\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nbody\n"
        '--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="Relevé.pdf"\n\n%PDF\n'
        "--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=report 2026.pdf\n\n%PDF\n"
        "--B--\n"
    ).encode("utf-8")
    assert names(parse(raw)) == ["Relevé.pdf", "report 2026.pdf"]


def test_decomposed_name_is_nfc_normalised():
    msg = staff_mail()
    msg.set_content("x")
    msg.add_attachment(b"1", maintype="application", subtype="pdf", filename="e\u0301te\u0301.pdf")
    assert names(parse(as_bytes(msg))) == ["\u00e9t\u00e9.pdf"]


# --------------------------------------------------------------------------
# Hostile file names
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("C:\\Users\\x\\invoice.pdf", "invoice.pdf"),
        (".htaccess", "htaccess"),
        ("...", "attachment-1.pdf"),
        ("", "attachment-1.pdf"),
        (None, "attachment-1.pdf"),
        ("a\x00b\x07c.pdf", "abc.pdf"),
        ("inv\u202efdp.exe", "invfdp.exe"),
        ("line\r\nbreak.pdf", "line  break.pdf"),
        ("evil\uff0f..\uff0fx.pdf", "evil_.._x.pdf"),
        ("  spaced.pdf  ", "spaced.pdf"),
    ],
)
def test_safe_filename(given, expected):
    assert safe_filename(given, "application/pdf", 1) == expected


def test_safe_filename_length_keeps_extension():
    long = "é" * 300 + ".pdf"
    result = safe_filename(long, "application/pdf")
    assert result.endswith(".pdf")
    assert len(result.encode("utf-8")) <= 255
    assert result == "é" * 125 + ".pdf"  # 250 bytes + 4
    assert len(safe_filename("x" * 400).encode()) == 255


def test_safe_filename_fallback_extension_from_content_type():
    assert safe_filename("", "application/octet-stream", 3) == "attachment-3.bin"
    assert safe_filename("", "image/jpeg", 2) == "attachment-2.jpg"
    assert safe_filename("", "text/plain", 1) == "attachment-1.txt"
    assert safe_filename("", "x-unknown/whatever", 1) == "attachment-1.bin"


def test_path_traversal_names_in_a_message():
    raw = (
        b"From: a@firm.example\nSubject: x\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nbody\n"
        b'--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="../../etc/passwd"\n\nroot\n'
        b'--B\nContent-Type: application/octet-stream; name="..\\\\..\\\\boot.ini"\n\n[boot]\n'
        b'--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=""\n\n%PDF\n'
        b"--B\nContent-Type: application/pdf\nContent-Disposition: attachment\n\n%PDF\n"
        b"--B--\n"
    )
    mail = parse(raw)
    assert names(mail) == ["passwd", "boot.ini", "attachment-3.pdf", "attachment-4.pdf"]
    assert mail.attachments[0].data == b"root"


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------


def test_missing_from_and_headers():
    mail = parse(b"\nonly a body\n")
    assert (mail.message_id, mail.subject) == ("", "")
    assert (mail.auto_submitted, mail.precedence) == ("", "")
    assert mail.text == "only a body\n"


def test_message_id():
    raw = (
        b"From: a@firm.example\n"
        b"Reply-To: Desk <Desk@Firm.example>\n"
        b"Message-ID:\n   <CAF=abc.123@mail.gmail.com>  \n"
        b"Subject: x\n\nbody\n"
    )
    mail = parse(raw)
    assert mail.message_id == "<CAF=abc.123@mail.gmail.com>"


def test_auto_submitted_and_precedence():
    mail = parse(b"From: a@firm.example\nAuto-Submitted: Auto-Replied\nPrecedence:  Bulk \n\nOut of office\n")
    assert mail.auto_submitted == "auto-replied"
    assert mail.precedence == "bulk"


def test_subject_whitespace_collapsed_and_unfolded():
    mail = parse(b"From: a@firm.example\nSubject:   PAY  1042\n\tclient=ACME   \n\nx\n")
    assert mail.subject == "PAY 1042 client=ACME"


def test_header_values_read_as_the_stdlib_reads_unstructured_text():
    """decode_header_text gives a value without an encoded word or an 8-bit
    byte back as it is, without the stdlib's parse: that must be what the
    stdlib's unstructured reading gives, on any such value (and a value with
    either still goes through it)."""
    import random

    from gateway.mail.decoding import decode_header_text

    def stdlib(raw: str) -> str:
        return str(policy.default.header_factory("x-decode", raw))

    rng = random.Random(1823)
    pieces = [chr(i) for i in range(128)] + list(" \t=?()\"\\<>@,;:.[]") + ["?=", "  ", " =", "= ?"]
    for _ in range(4000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
        if "=?" in raw:
            continue
        assert decode_header_text("subject", raw) == stdlib(raw), raw
    for raw in ["=?utf-8?q?caf=C3=A9?= =?utf-8?q?_cr=C3=A8me?=", "Invoice =?iso-8859-1?q?=E9t=E9?= 5",
                "caf\udce9 au lait", "=?utf-8?b?w6l0w6k=?="]:
        assert decode_header_text("subject", raw) == scrub(stdlib(raw))
    message = staff_mail(Subject="Invoice 1 $1,250.00 to=client1@client.example pw=Blue42 (hint: Sky?)")
    assert parse(as_bytes(message)).subject == "Invoice 1 $1,250.00 to=client1@client.example pw=Blue42 (hint: Sky?)"


# --------------------------------------------------------------------------
# Line endings and malformed input
# --------------------------------------------------------------------------


def test_crlf_input_matches_lf_input():
    msg = staff_mail()
    msg.set_content("Line one\nLine two\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    lf, crlf = parse(as_bytes(msg)), parse(as_bytes(msg, crlf=True))
    assert b"\r\n" in as_bytes(msg, crlf=True)
    assert crlf.text == lf.text == "Line one\nLine two\n"
    assert crlf.attachments == lf.attachments
    assert crlf.attachments[0].data == PDF
    assert (crlf.subject, crlf.message_id) == (lf.subject, lf.message_id)


def test_crlf_quoted_printable_body():
    raw = (
        b"From: a@firm.example\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Montant: 1=C2=A0200 =E2=82=AC, soft=\r\nbreak\r\nend\r\n"
    )
    assert parse(raw).text == "Montant: 1\u00a0200 €, softbreak\nend\n"


def test_broken_base64_is_decoded_best_effort():
    good = base64.b64encode(PDF)
    raw = (
        b"From: a@firm.example\nSubject: x\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nbody\n"
        b"--B\nContent-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n\n"
        + good.rstrip(b"=") + b"\n"  # padding lost
        b"--B\nContent-Type: application/pdf; name=b.pdf\nContent-Transfer-Encoding: base64 \n\n"
        + good[:8] + b"!*\x00" + good[8:] + b"\n"  # junk, CTE with trailing space
        b"--B\nContent-Type: application/pdf; name=c.pdf\nContent-Transfer-Encoding: base64\n\n"
        b"@@@\n"
        b"--B--\n"
    )
    mail = parse(raw)
    assert [(a.filename, a.data) for a in mail.attachments] == [
        ("a.pdf", PDF),
        ("b.pdf", PDF),
        ("c.pdf", b""),
    ]


def test_base64_of_every_shape_is_decoded_as_binascii_decodes_it():
    """decoding.b64decode (the whole parse's, and DSNs') on varied base64:
    lengths 0 to 700, lines of any width ending LF or CRLF, junk between
    letters, padding kept or lost, a lone last sextet, non-zero bits in the
    last letter before the padding: the bytes binascii gives for the same
    letters, as the gateway read them before it decoded with pybase64."""
    import binascii
    import random

    from gateway.mail.decoding import b64decode

    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    rng = random.Random(1826)
    for trial in range(2000):
        letters = bytearray(base64.b64encode(rng.randbytes(rng.randrange(0, 700))).rstrip(b"="))
        if letters and len(letters) % 4 and rng.random() < 0.5:  # bits past the data's end set
            letters[-1] = alphabet[alphabet.index(letters[-1]) | rng.randrange(1, 16) & 0b1111]
        if rng.random() < 0.2:
            letters.append(rng.choice(alphabet))  # perhaps a lone last sextet
        quads = bytes(letters)[:len(letters) - len(letters) % 4 if len(letters) % 4 == 1 else len(letters)]
        expected = binascii.a2b_base64(quads + b"=" * (-len(quads) % 4), strict_mode=True)
        text = bytearray(letters + (b"=" * (-len(letters) % 4) if rng.random() < 0.5 else b""))
        width, eol = rng.choice([76, 64, rng.randrange(1, 100)]), rng.choice([b"\n", b"\r\n"])
        text = bytearray(eol.join(text[at:at + width] for at in range(0, len(text), width)) + eol)
        for _ in range(rng.choice([0, 0, 1, 3])):
            at = rng.randrange(len(text) + 1)
            text[at:at] = rng.choice([b"!", b" ", b"\t", b"\x00", b"\xff", b"-", b"*.\x80"])
        assert b64decode(bytes(text)) == expected, bytes(text)


def test_unknown_charsets_fall_back_to_utf8_with_replacement():
    raw = (
        b"From: =?x-klingon?q?Qapla=E9?= <a@firm.example>\n"
        b"Subject: =?x-unknown?q?caf=E9?= and =?utf-8?q?bad=FF?=\n"
        b"Content-Type: text/plain; charset=x-unknown-charset\n\n"
        b"caf\xc3\xa9 \xff\n"
    )
    mail = parse(raw)
    assert mail.subject == "caf\ufffd and bad\ufffd"
    assert mail.text == "café \ufffd\n"


def test_declared_charsets_are_honoured():
    raw = b"From: a@firm.example\nContent-Type: text/plain; charset=iso-8859-1\n\nR\xe9sum\xe9 \x80\n"
    assert parse(raw).text == "Résumé €\n"
    raw = b"From: a@firm.example\nContent-Type: text/plain; charset=base64\n\ncaf\xc3\xa9\n"
    assert parse(raw).text == "café\n"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage without headers",
        b"Subject: no body",
        b"Content-Type: multipart/mixed\n\nno boundary at all\n",
        b'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nunterminated',
        b"Content-Type: text/plain; charset=\"\n\nbroken param\n",
        b"From: <>\nContent-Type: application/pdf; name*0*=x'';name*1*=%ZZ\n\n%PDF",
        b"Content-Type: text/plain; charset=undefined\n\nabc\n",
    ],
)
def test_malformed_mail_does_not_crash(raw):
    mail = parse(raw)
    assert isinstance(mail, ParsedMail)


def test_deeply_nested_message_does_not_crash():
    depth = 2000
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
    raw = b"From: a@firm.example\nSubject: deep\n" + head + b"Content-Type: text/plain\n\nx\n"
    mail = parse(raw)
    assert mail.subject == "deep"
    # whatever could not be parsed is kept, not dropped
    assert mail.text == "x\n" or mail.attachments[0].data == raw


# --------------------------------------------------------------------------
# Forwarded messages
# --------------------------------------------------------------------------


def test_forwarded_message_attachments_are_included():
    inner = EmailMessage()
    inner["From"] = "client@acme.example"
    inner["Subject"] = "Invoice"
    inner.set_content("Inner body must not be read as directives.\n")
    inner.add_attachment(PDF, maintype="application", subtype="pdf", filename="acme-invoice.pdf")

    outer = staff_mail()
    outer.set_content("FYI, forwarding the client's invoice.\n")
    outer.add_attachment(inner)  # message/rfc822
    outer.add_attachment(b"notes", maintype="text", subtype="plain", filename="notes.txt")

    mail = parse(as_bytes(outer))

    assert mail.text == "FYI, forwarding the client's invoice.\n"
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("acme-invoice.pdf", "application/pdf"),
        ("notes.txt", "text/plain"),
    ]
    assert mail.attachments[0].data == PDF
    assert mail.subject == "PAY 1042 client=ACME"


def test_forwarded_message_with_tnef_is_unpacked():
    inner = email.message_from_bytes(
        outlook_tnef_mail((SAMPLES / "winmail-one-file.dat").read_bytes()), policy=policy.default
    )
    outer = staff_mail()
    outer.set_content("fwd\n")
    outer.add_attachment(inner)
    mail = parse(as_bytes(outer))
    assert [(a.filename, len(a.data)) for a in mail.attachments] == [("AUTHORS", 244)]
    assert mail.text == "fwd\n"


def test_policy_default_message_round_trip_smtputf8():
    msg = EmailMessage(policy=policy.SMTPUTF8)
    msg["From"] = "Zoë <zoe@firm.example>"
    msg["Subject"] = "Facture été"
    msg.set_content("Bonjour\n")
    mail = parse(msg.as_bytes())
    assert mail.subject == "Facture été"


def test_base64_encoded_forwarded_message_is_decoded():
    inner = (
        b"From: client@acme.example\nSubject: inv\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=I\n\n"
        b"--I\nContent-Type: text/plain\n\ninner body\n"
        b"--I\nContent-Type: application/pdf; name=acme.pdf\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(PDF) + b"--I--\n"
    )
    raw = (
        b"From: a@firm.example\nSubject: s\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=O\n\n"
        b"--O\nContent-Type: text/plain\n\nouter\n"
        b"--O\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename=fwd.eml\n\n"
        + base64.encodebytes(inner) + b"--O--\n"
    )
    mail = parse(raw)
    assert mail.text == "outer"
    assert mail.attachments == (Attachment("acme.pdf", "application/pdf", PDF),)


def test_text_parts_split_around_an_attachment_are_joined():
    # Apple Mail puts text typed after an attachment in a second part.
    raw = (
        b"From: a@firm.example\nSubject: s\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=B\n\n"
        b"--B\nContent-Type: text/plain; charset=us-ascii\n\nbefore\n"
        b"--B\nContent-Type: application/pdf; name=a.pdf\nContent-Disposition: inline; filename=a.pdf\n\n%PDF\n"
        b"--B\nContent-Type: text/plain; charset=us-ascii\n\nafter\n"
        b"--B--\n"
    )
    mail = parse(raw)
    assert mail.text == "before\nafter"
    assert names(mail) == ["a.pdf"]


def test_winmail_dat_relabelled_as_octet_stream_is_unpacked():
    tnef = (SAMPLES / "winmail-two-files.dat").read_bytes()
    raw = outlook_tnef_mail(tnef).replace(
        b'application/ms-tnef; name="winmail.dat"', b'application/octet-stream; name="winmail.dat"'
    )
    assert names(parse(raw)) == ["AUTHORS", "README"]


# --------------------------------------------------------------------------
# mail-parser asked for the MIME tree alone
# --------------------------------------------------------------------------


def _tree_mails() -> list[bytes]:
    """Messages of every shape mail-parser's own pass looks at: attachments
    named and not, inline cid images, RTF, a multipart sent as an
    attachment, forwarded messages (base64 too), TNEF, broken encodings and
    charsets, a lost epilogue, no boundary, 8-bit bytes, garbage."""
    logo = staff_mail()
    logo.set_content("see the logo")
    logo.add_alternative('<p>Hi <img src="cid:logo@x"></p>', subtype="html")
    logo.get_payload()[1].add_related(b"\x89PNG", maintype="image", subtype="png", cid="<logo@x>")
    logo.add_attachment(PDF, maintype="application", subtype="pdf", filename="inv 2026.pdf")
    forwarded = staff_mail()
    forwarded.set_content("fwd")
    forwarded.add_attachment(logo)
    return [
        as_bytes(logo), as_bytes(logo, crlf=True), as_bytes(forwarded),
        outlook_tnef_mail((SAMPLES / sorted(TNEF_SAMPLES)[0]).read_bytes()),
        b"From: a@firm.example\nTo: x, <broken\nDate: not a date\nReceived: from nowhere\n"
        b"Subject: =?x-unknown?q?caf=E9?=\nContent-Type: multipart/mixed; boundary=B\n\n"
        b"--B\nContent-Type: text/plain; charset=latin-1\n\ncaf\xe9\n"
        b"--B\nContent-Type: application/rtf\n\n{\\rtf1}\n"
        b"--B\nContent-Disposition: attachment\n\nunnamed\n"
        b"--B\nContent-Type: multipart/alternative; boundary=C\nContent-Disposition: attachment; filename=m.txt\n\n"
        b"--C\nContent-Type: text/plain\n\ninner\n--C--\n"
        b"--B\nContent-Type: application/pdf; name=x.pdf\nContent-Transfer-Encoding: base64 \n\nJVBER!!i0x\n"
        b"--B--\nepilogue\n--B\nContent-Type: text/plain\n\nlost part\n--B--\n",
        b"From: a@firm.example\nContent-Type: multipart/mixed; boundary=O\n\n"
        b"--O\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(b"Subject: inner\n\nbody\n") + b"--O--\n",
        b"Content-Type: multipart/mixed\n\nno boundary at all\n",
        b'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nunterminated',
        b"\x00\xff\xfe garbage without headers",
        b"",
    ]


def _shape(message) -> list:
    """Everything a part of a compat32 tree holds, part by part, and its bytes."""
    shape = []
    for part in message.walk():
        payload = part._payload  # noqa: SLF001 - what the walk in parse.py reads
        shape.append((part.get_unixfrom(), list(part.raw_items()), payload if isinstance(payload, str) else len(payload),
                      part.preamble, part.epilogue, [type(d).__name__ for d in part.defects], part.get_default_type(),
                      part.get_charset()))
    return shape + [message.as_bytes()]


@pytest.mark.parametrize("index", range(len(_tree_mails())))
def test_the_tree_read_is_mail_parsers_tree_after_its_whole_pass(index):
    raw = _tree_mails()[index]
    assert _shape(parse_module._TreeOnly.from_bytes(raw).message) == _shape(mailparser.parse_from_bytes(raw).message)


def test_reading_a_message_asks_mail_parser_for_its_tree_alone(monkeypatch):
    # Its own pass (addresses, dates, Received headers, defects, its
    # attachment list) was a third of reading a request, and nothing here
    # reads what it finds.
    passes = []
    monkeypatch.setattr(mailparser.MailParser, "parse", lambda self: passes.append(self))
    mail = parse(_tree_mails()[0])
    assert names(mail) == ["inv 2026.pdf"] and mail.text == "see the logo\n" and passes == []
