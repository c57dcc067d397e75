"""Outbound mail: headers, parts, escaping, header injection, secrets."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import html
import inspect
import quopri
import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from gateway.outbound import compose
from gateway.outbound.compose import EXAMPLE_SUBJECT, Composed, Composer, to_bytes

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"
HOSTNAME = "gw.clienttrack.test"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5)))

# The password the staff member chose. It exists only here: nothing in the
# composer takes a chosen password, so it must never show up anywhere.
CHOSEN_PASSWORD = "Tr0ub4dor-Zebra-77"
GENERATED_PASSWORD = "k7Q-pv9x-M2rT-wq4H"
LINK = "https://pay.clienttrack.test/r/Zx81kQmP0aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
INJECT = "\r\nBcc: evil@x"


@pytest.fixture
def composer() -> Composer:
    return Composer(TEMPLATES, hostname=HOSTNAME)


def request_args(**overrides):
    args = dict(
        firm_name="Smith & Jones Accounting",
        firm_domain="smith.clienttrack.test",
        staff_email="anna@smith.example",
        staff_name="Anna Lee",
        client_email="jane@client.example",
        title="",
        invoice="1042",
        amount="$1,250.00 CAD",
        hint="Dog's name",
        link=LINK,
        expires_on="1 April 2026",
        now=NOW,
    )
    args.update(overrides)
    return args


def confirmation_args(**overrides):
    args = dict(
        firm_name="Smith & Jones Accounting",
        firm_domain="smith.clienttrack.test",
        staff_email="anna@smith.example",
        client_email="jane@client.example",
        title="",
        invoice="1042",
        amount="$1,250.00 CAD",
        hint="Dog's name",
        expires_on="1 April 2026",
        attachment_names=["invoice-1042.pdf", "statement.pdf"],
        generated_password=None,
        in_reply_to="<CAB123@mail.smith.example>",
        request_ref="R-7",
        now=NOW,
    )
    args.update(overrides)
    return args


def rejection_args(**overrides):
    args = dict(
        firm_domain="smith.clienttrack.test",
        staff_email="anna@smith.example",
        original_subject_safe="Invoice 1042 $1,250.00 to=jane pw=***",
        errors=[
            ("to=", '"jane" is not an email address'),
            ("amount", "the amount must be more than zero"),
        ],
        in_reply_to="<CAB123@mail.smith.example>",
        now=NOW,
    )
    args.update(overrides)
    return args


def parts(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) with the HTML entities decoded, for content checks."""
    text = msg.get_body(("plain",)).get_content()
    markup = msg.get_body(("html",)).get_content()
    return text, markup


def roundtrip(msg: EmailMessage) -> EmailMessage:
    return email.message_from_bytes(to_bytes(msg), policy=email.policy.default)


def every_message(composer: Composer) -> list[EmailMessage]:
    return [
        composer.client_request(**request_args()),
        composer.confirmation(**confirmation_args()),
        composer.confirmation(**confirmation_args(generated_password=GENERATED_PASSWORD)),
        composer.rejection(**rejection_args()),
        composer.notice(
            firm_domain="smith.clienttrack.test",
            to="anna@smith.example",
            subject="How to send a payment request",
            paragraphs=["Write the directives in the subject.", "Example:\n    " + EXAMPLE_SUBJECT],
            in_reply_to="<CAB9@mail.smith.example>",
            now=NOW,
        ),
    ]


# -- the client's mail ----------------------------------------------------------


def test_client_request_headers(composer):
    msg = composer.client_request(**request_args())
    sender = msg["From"].addresses[0]
    assert sender.display_name == "Smith & Jones Accounting"
    assert sender.addr_spec == "pay@smith.clienttrack.test"
    reply_to = msg["Reply-To"].addresses[0]
    assert reply_to.addr_spec == "anna@smith.example"
    assert reply_to.display_name == "Anna Lee"
    assert msg["To"].addresses[0].addr_spec == "jane@client.example"
    assert msg["Subject"] == "Secure payment request from Smith & Jones Accounting: Invoice 1042 — $1,250.00 CAD"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["MIME-Version"] == "1.0"
    assert msg["In-Reply-To"] is None


def test_client_request_subject_uses_title(composer):
    msg = composer.client_request(**request_args(title="March bookkeeping"))
    assert msg["Subject"] == "Secure payment request from Smith & Jones Accounting: March bookkeeping — $1,250.00 CAD"
    text, markup = parts(msg)
    assert "March bookkeeping" in text and "March bookkeeping" in markup
    assert "1042" in text and "1042" in markup


def test_client_request_content(composer):
    msg = composer.client_request(**request_args())
    text, markup = parts(msg)
    for body in (text, html.unescape(markup)):
        body = " ".join(body.split())  # the text part is wrapped
        assert LINK in body
        assert "$1,250.00 CAD" in body
        assert "Password hint:" in body and "Dog's name" in body
        assert "View your email" in body
        assert "Smith & Jones Accounting" in body
        assert "1042" in body
        assert "1 April 2026" in body
        assert "never ask for your card details" in body
        assert "given to you separately" in body
        assert "Anna Lee" in body
        assert "Sent securely by clienttrack on behalf of Smith & Jones Accounting" in body
    assert f'href="{LINK}"' in markup


def test_client_request_has_no_attachments_and_no_password(composer):
    # Structurally: there is nothing to pass a password or a file through.
    params = inspect.signature(Composer.client_request).parameters
    assert not any("pass" in name or name in ("pw", "attachments") for name in params)
    msg = composer.client_request(**request_args())
    assert list(msg.iter_attachments()) == []
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    raw = to_bytes(msg)
    for secret in (CHOSEN_PASSWORD, GENERATED_PASSWORD):
        assert secret.encode() not in raw
        assert all(secret not in body for body in parts(msg))


def test_client_request_rejects_non_http_link(composer):
    with pytest.raises(ValueError):
        composer.client_request(**request_args(link="javascript:alert(1)"))


def test_display_name_with_quotes_and_commas_is_quoted(composer):
    firm = 'Smith, Jones & "Partners"'
    msg = composer.client_request(**request_args(firm_name=firm, staff_name="Lee, Anna"))
    back = roundtrip(msg)
    assert back["From"].addresses[0].display_name == firm
    assert back["From"].addresses[0].addr_spec == "pay@smith.clienttrack.test"
    assert len(back["From"].addresses) == 1
    assert back["Reply-To"].addresses[0].display_name == "Lee, Anna"
    assert len(back["Reply-To"].addresses) == 1


# -- replies to the staff member -------------------------------------------------


def test_confirmation_without_generated_password(composer):
    msg = composer.confirmation(**confirmation_args())
    assert msg["Subject"] == "Sent: Invoice 1042 to jane@client.example"
    assert msg["To"].addresses[0].addr_spec == "anna@smith.example"
    assert msg["From"].addresses[0].addr_spec == "pay@smith.clienttrack.test"
    text, markup = parts(msg)
    for body in (text, html.unescape(markup)):
        body = " ".join(body.split())
        assert "jane@client.example" in body
        assert "$1,250.00 CAD" in body
        assert "invoice-1042.pdf" in body and "statement.pdf" in body
        assert "R-7" in body
        assert "by phone" in body
        # No password of any kind: neither a value nor a password block.
        assert "Password for the client".lower() not in body.lower()
        assert CHOSEN_PASSWORD not in body
        assert GENERATED_PASSWORD not in body
    assert CHOSEN_PASSWORD.encode() not in to_bytes(msg)


def test_generated_password_appears_only_in_the_confirmation(composer):
    conf = composer.confirmation(**confirmation_args(generated_password=GENERATED_PASSWORD))
    text, markup = parts(conf)
    assert GENERATED_PASSWORD in text and GENERATED_PASSWORD in markup
    assert "by phone" in text
    assert GENERATED_PASSWORD not in str(conf["Subject"])
    client = composer.client_request(**request_args())
    assert GENERATED_PASSWORD.encode() not in to_bytes(client)
    rejection = composer.rejection(**rejection_args())
    assert GENERATED_PASSWORD.encode() not in to_bytes(rejection)


def test_confirmation_without_invoice(composer):
    msg = composer.confirmation(**confirmation_args(invoice=""))
    assert msg["Subject"] == "Sent: payment request for $1,250.00 CAD to jane@client.example"
    text, _ = parts(msg)
    assert "status R-7" in text


def test_rejection_lists_each_error_and_the_example(composer):
    msg = composer.rejection(**rejection_args())
    assert msg["Subject"] == "Not sent: 2 problems in your payment request"
    assert msg["Auto-Submitted"] == "auto-replied"
    text, markup = parts(msg)
    for body in (text, html.unescape(markup)):
        body = " ".join(body.split())
        assert '"jane" is not an email address' in body
        assert "the amount must be more than zero" in body
        assert "to=" in body and "amount" in body
        assert EXAMPLE_SUBJECT in body
        assert "Invoice 1042 $1,250.00 to=jane pw=***" in body
        for key in ("to=", "amount=", "$1,250.00", "currency=", "invoice=", "#1042", "pw=auto",
                    "hint=", "+fee", "fee=no", "expires=14d"):
            assert key in body, key
    # The example is a line of its own in the text part, never wrapped.
    text = parts(msg)[0]
    assert "    " + EXAMPLE_SUBJECT in text.splitlines()


def test_rejection_with_one_error(composer):
    msg = composer.rejection(**rejection_args(errors=[("pw", "a password is required")]))
    assert msg["Subject"] == "Not sent: 1 problem in your payment request"
    assert "a password is required" in parts(msg)[0]


def test_notice(composer):
    msg = composer.notice(
        firm_domain="smith.clienttrack.test",
        to="anna@smith.example",
        subject="Help",
        paragraphs=["First paragraph.", "Second <b>paragraph</b>."],
        now=NOW,
    )
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["Auto-Submitted"] == "auto-replied"
    text, markup = parts(msg)
    assert "First paragraph." in text and "Second <b>paragraph</b>." in text
    assert "Second &lt;b&gt;paragraph&lt;/b&gt;." in markup


def test_replies_thread_and_are_auto_replied(composer):
    for msg in every_message(composer)[1:]:
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["In-Reply-To"].startswith("<CAB")
        assert msg["References"] == msg["In-Reply-To"]


def test_in_reply_to_without_brackets_is_wrapped(composer):
    msg = composer.confirmation(**confirmation_args(in_reply_to="abc@mail.example"))
    assert msg["In-Reply-To"] == "<abc@mail.example>"


# -- every message ------------------------------------------------------------------


def test_common_headers(composer):
    for msg in every_message(composer):
        assert msg["Date"] == format_datetime(NOW)
        assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith(f"@{HOSTNAME}>")
        assert msg["MIME-Version"] == "1.0"
        assert msg.get_content_type() == "multipart/alternative"
        plain, rich = msg.get_payload()
        assert plain.get_content_type() == "text/plain" and plain.get_content_charset() == "utf-8"
        assert rich.get_content_type() == "text/html" and rich.get_content_charset() == "utf-8"


def test_message_ids_are_unique(composer):
    ids = {composer.client_request(**request_args())["Message-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_naive_now_is_refused(composer):
    with pytest.raises(ValueError):
        composer.client_request(**request_args(now=datetime(2026, 3, 2, 9, 30)))


def test_bad_hostname_is_refused():
    with pytest.raises(ValueError):
        Composer(TEMPLATES, hostname="gw.example\r\nBcc: evil@x")


def test_to_bytes_uses_crlf_only(composer):
    for msg in every_message(composer):
        raw = to_bytes(msg)
        assert b"\r\n" in raw
        assert b"\n" not in raw.replace(b"\r\n", b"")
        assert b"\r" not in raw.replace(b"\r\n", b"")


def test_text_part_lines_are_short(composer):
    for msg in every_message(composer):
        for line in parts(msg)[0].splitlines():
            if "://" not in line and line.strip() != EXAMPLE_SUBJECT:
                assert len(line) <= 78, line


def test_non_ascii_roundtrip(composer):
    msg = composer.client_request(
        **request_args(firm_name="Comptabilité Tremblay", title="Facture — mars", hint="Prénom du chien")
    )
    raw = to_bytes(msg)
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # headers are 7-bit: RFC 2047 encoded words
    assert b"=?utf-8?" in head
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back["Subject"] == "Secure payment request from Comptabilité Tremblay: Facture — mars — $1,250.00 CAD"
    assert back["Subject"] == msg["Subject"]
    assert back["From"].addresses[0].display_name == "Comptabilité Tremblay"
    text, markup = parts(back)
    assert "Prénom du chien" in text and "Prénom du chien" in markup
    assert "Facture — mars" in text


# -- header injection and escaping ------------------------------------------------------


def test_header_injection_adds_no_header(composer):
    msg = composer.client_request(
        **request_args(
            firm_name="Smith" + INJECT,
            staff_name="Anna" + INJECT,
            title="March" + INJECT,
            hint="Dog" + INJECT,
            invoice="1042" + INJECT,
            amount="$1,250.00" + INJECT,
            expires_on="1 April 2026" + INJECT,
        )
    )
    assert msg["Bcc"] is None
    expected = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
                "Content-Type"]
    assert msg.keys() == expected
    raw = to_bytes(msg)
    # The header sections, the message's and its parts'. (A quoted-printable
    # line may start with what follows a soft break: the body's text, read
    # back within its line, below.)
    heads = [raw.split(b"\r\n\r\n", 1)[0]] + [part.split(b"\r\n\r\n", 1)[0] for part in raw.split(b"\r\n--")[1:]]
    assert not any(line.lower().startswith(b"bcc:") for head in heads for line in head.split(b"\r\n"))
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back.keys() == expected
    assert back["Bcc"] is None
    assert back["From"].addresses[0].display_name == "Smith Bcc: evil@x"
    assert len(back["To"].addresses) == 1
    # The body text cannot be given fake lines either.
    text, markup = parts(back)
    assert "Password hint: Dog Bcc: evil@x" in text
    assert not any(line.lower().lstrip().startswith("bcc:") for line in (text + markup).splitlines())


def test_header_injection_in_replies(composer):
    conf = composer.confirmation(
        **confirmation_args(
            firm_name="Smith" + INJECT, title="March" + INJECT, hint="Dog" + INJECT,
            invoice="1042" + INJECT, request_ref="R-7" + INJECT, in_reply_to="<a@b>" + INJECT,
            attachment_names=["a.pdf" + INJECT],
        )
    )
    rej = composer.rejection(
        **rejection_args(original_subject_safe="Invoice 1042" + INJECT, errors=[("to" + INJECT, "bad" + INJECT)],
                         in_reply_to="<a@b>" + INJECT)
    )
    note = composer.notice(firm_domain="smith.clienttrack.test", to="anna@smith.example",
                           subject="Help" + INJECT, paragraphs=["x" + INJECT], in_reply_to="<a@b>" + INJECT, now=NOW)
    for msg in (conf, rej, note):
        keys = msg.keys()
        back = roundtrip(msg)
        assert back.keys() == keys
        assert "Bcc" not in keys and back["Bcc"] is None
        assert back["In-Reply-To"] == "<a@b>"


@pytest.mark.parametrize("field", ["client_email", "staff_email", "firm_domain"])
def test_injection_through_an_address_is_refused(composer, field):
    value = "pay.example" if field == "firm_domain" else "jane@client.example"
    with pytest.raises(ValueError):
        composer.client_request(**request_args(**{field: value + INJECT}))


def test_html_is_escaped(composer):
    nasty = '<script>alert("x")</script>'
    msg = composer.client_request(**request_args(title=nasty, hint=nasty, firm_name='A "B" <i>C</i>'))
    text, markup = parts(msg)
    assert "<script>" not in markup and "<i>" not in markup
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in markup
    assert "A &#34;B&#34; &lt;i&gt;C&lt;/i&gt;" in markup
    # The text part is not HTML: it shows the value as typed.
    assert f"Password hint: {nasty}" in text
    assert "&lt;" not in text and "&#34;" not in text


def test_html_layout(composer):
    for msg in every_message(composer):
        markup = parts(msg)[1]
        assert "<style" not in markup  # mail clients drop <style>: inline CSS only
        assert "max-width:600px" in markup
        assert "Sent securely by clienttrack on behalf of" in markup
        assert 'name="viewport"' in markup


def test_a_long_subject_reads_back_from_the_wire_with_single_spaces(composer):
    # Python's header folding, at 78 columns beside an encoded word (the em dash),
    # left a space before the fold: mail clients showed "1042  —".
    msg = composer.client_request(**request_args())
    wire = email.message_from_bytes(to_bytes(msg), policy=email.policy.default)
    assert wire["Subject"] == "Secure payment request from Smith & Jones Accounting: Invoice 1042 — $1,250.00 CAD"


# -- written straight to the wire: as the email package writes it ------------------------------------

WIRE_CASES = [
    {},
    {"firm_name": "Cabinet Éric Lévesque CPA", "staff_name": "Éric Lévesque", "title": "Déclaration 2025 — été",
     "lang": "fr"},
    {"firm_name": 'Smith, "Jones" & Co.', "staff_name": "Lee, Anna (tax)", "invoice": "A-7/2026"},
    {"title": "x" * 300, "invoice": "1042 =?utf-8?q?not_a_word?=", "amount": "$1,250.00  CAD"},
    {"firm_name": "Smith" + INJECT, "staff_name": "Anna" + INJECT, "title": "March" + INJECT,
     "hint": "Dog" + INJECT + "\u2028\x0bsep", "card_fee": "2.4 %\u00a0(Visa)"},
    {"kind": "message", "upload_items": ("T4 slips", "signed letter"), "can_reply": True, "reminder_of": "2026-03-01"},
    {"firm_name": "数字会计事务所" * 6, "staff_name": "王小明"},
]


def _reads_as(msg) -> dict:
    parsed = email.message_from_bytes(to_bytes(msg), policy=email.policy.default)
    headers = {}
    for name in ("From", "To", "Reply-To"):
        if parsed[name] is not None:
            headers[name] = [(a.display_name, a.addr_spec) for a in parsed[name].addresses]
    for name in ("Subject", "Date", "In-Reply-To", "References", "Auto-Submitted", "X-Auto-Response-Suppress",
                 "MIME-Version"):
        headers[name] = parsed[name]
    plain, rich = parsed.get_payload()
    return {"keys": parsed.keys(), "headers": headers, "type": parsed.get_content_type(),
            "parts": [(p.get_content_type(), p.get_content_charset(), p["Content-Transfer-Encoding"],
                       p.get_payload(decode=True), p.get_content()) for p in (plain, rich)]}


@pytest.mark.parametrize("case", range(len(WIRE_CASES)))
def test_the_wire_form_reads_as_the_email_packages(case):
    fast, reference = Composer(TEMPLATES, hostname=HOSTNAME), Composer(TEMPLATES, hostname=HOSTNAME, wire=False)
    overrides = WIRE_CASES[case]
    made = [(fast.client_request(**request_args(**overrides)), reference.client_request(**request_args(**overrides)))]
    names = {key: overrides[key] for key in ("firm_name", "title", "invoice", "amount", "hint", "card_fee", "kind")
             if key in overrides}
    made.append((fast.confirmation(**confirmation_args(**names, in_reply_to="<CAB9@mail.smith.example>")),
                 reference.confirmation(**confirmation_args(**names, in_reply_to="<CAB9@mail.smith.example>"))))
    for wire, package in made:
        assert isinstance(package, EmailMessage)
        if not isinstance(wire, Composed):
            # A display name longer than one encoded word: the email package makes that mail.
            assert case == 6 and isinstance(wire, EmailMessage)
            continue
        raw = to_bytes(wire)
        assert b"\n" not in raw.replace(b"\r\n", b"") and max(map(len, raw.split(b"\r\n"))) <= 998
        assert raw.isascii()
        ours, theirs = _reads_as(wire), _reads_as(package)
        # A subject is read back as written; through the email package, text
        # that looks like an encoded word was read as one (case 3).
        assert ours["headers"].pop("Subject") == wire.subject
        if "=?" not in wire.subject:
            assert theirs["headers"]["Subject"] == wire.subject
        theirs["headers"].pop("Subject")
        assert ours == theirs
        assert wire.rcpt_to == package["To"].addresses[0].addr_spec
        assert wire.mail_from == package["From"].addresses[0].addr_spec


def test_quoted_printable_decodes_as_the_email_packages_in_lines_of_76():
    # binascii's encoder writes the parts; what a mail client decodes from
    # them is what it decodes from the email package's encoding of the same
    # text: line ends, '=', a lone '.', white space at a line's end (a
    # space at column 75 too), tabs, non-ASCII, long lines.
    chance = random.Random(2045)
    pieces = ["a", " ", "\t", "=", ".", "é", "€", "\n", "\r\n", "\r", "x" * 70, "x" * 74, "From ", "\x7f", "_", "?",
              "\u2028"]
    texts = ["", ".", ".\n.", "x" * 74 + " \n", "x" * 75 + "\t", "=" * 30, "é" * 40 + " "]
    texts += ["".join(chance.choice(pieces) for _ in range(chance.randint(1, 40))) for _ in range(500)]
    for text in texts:
        ours = compose._quoted_printable(text)
        part = EmailMessage()
        part.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        theirs = part.get_payload(decode=False).replace("\n", "\r\n").encode("ascii")  # as on the wire
        assert quopri.decodestring(ours) == quopri.decodestring(theirs), text
        assert ours.endswith(b"\r\n") and b"\n" not in ours.replace(b"\r\n", b"") and b"\r" not in ours.replace(b"\r\n", b"")
        assert max(map(len, ours.split(b"\r\n"))) <= 76, ours
        ours_read = email.message_from_bytes(b'Content-Type: text/plain; charset="utf-8"\r\n'
                                             b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + ours,
                                             policy=email.policy.default)
        theirs_read = email.message_from_bytes(part.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
        assert ours_read.get_content() == theirs_read.get_content(), text


def _quoted_printable_at_once(text: str) -> bytes:
    """The whole text through binascii's encoder in one call (as the
    composer did before it went line by line), lines kept within 76."""
    encoded = binascii.b2a_qp(b"\r\n".join(text.encode("utf-8").splitlines()) + b"\r\n", istext=True)
    return b"\r\n".join(line if len(line) <= 76 else line[:-3] + b"=\r\n" + line[-3:]
                         for line in encoded.split(b"\r\n"))


def test_quoted_printable_line_by_line_is_the_whole_text_at_once():
    # Each line's encoding is remembered on its own: the encoder carries
    # nothing from one line to the next, so the bytes are the same.
    chance = random.Random(76)
    pieces = ["a", " ", "\t", "=", ".", "é", "€", "\n", "\r\n", "\r", "x" * 70, "x" * 74, "From ", "\x7f", "_", "?",
              "\u2028", "\x0c", "\x85", "\x00"]
    texts = ["", "\n", "\r", "\n\n", "a\n", ".", "x" * 74 + " \n", "x" * 75 + "\t", "é" * 40 + " "]
    texts += ["".join(chance.choice(pieces) for _ in range(chance.randint(1, 40))) for _ in range(2000)]
    for text in texts:
        assert compose._quoted_printable(text) == _quoted_printable_at_once(text), text
        assert compose._quoted_printable(text, (text[:3] or "x",)) == _quoted_printable_at_once(text), text


def test_encoded_words_hold_whole_characters_each_as_many_as_fit():
    chance = random.Random(2047)
    alphabet = ["a", " ", "é", "€", "数", "\U0001f600", "=", "?"]
    texts = ["", "a", "é" * 22 + "a", "é" * 23, "数" * 15, "\U0001f600" * 12]
    texts += ["".join(chance.choice(alphabet) for _ in range(chance.randint(1, 120))) for _ in range(500)]
    for text in texts:
        words_out = compose._encoded_words(text)
        pieces = [base64.b64decode(word[len("=?utf-8?b?"):-2]).decode("utf-8") for word in words_out]
        assert "".join(pieces) == text
        assert all(len(word) <= 75 and len(piece.encode()) <= 45 for word, piece in zip(words_out, pieces))
        # Each word but the last is full: its next character would not have fit.
        assert all(len((piece + following[0]).encode()) > 45 for piece, following in zip(pieces, pieces[1:]))


def test_templates_compiled_before_the_workers_fork_are_not_read_again(tmp_path, monkeypatch):
    # serve compiles them once before it forks (service.prepare); no mail
    # after that reads (or compiles) a template file, whichever Composer makes it.
    folder = tmp_path / "email"
    folder.mkdir()
    for path in TEMPLATES.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    compose.compile_all(folder)

    def read(*args):
        raise AssertionError("a template file was read again")

    monkeypatch.setattr(compose.FileSystemLoader, "get_source", read)
    made = Composer(folder, hostname=HOSTNAME)
    assert to_bytes(made.client_request(**request_args())) and to_bytes(made.confirmation(**confirmation_args()))
    assert made.notice(firm_domain="smith.clienttrack.test", to="anna@smith.example", subject="Hello",
                       paragraphs=["Hi."], now=NOW)["Subject"] == "Hello"


def test_no_line_holding_the_link_or_a_generated_password_is_remembered(composer):
    # The work on a mail's lines (wrapping, quoted-printable) is remembered
    # for the next mails, where the template's lines come again; a line with
    # the link (its token opens the client's page) or a generated password
    # must not outlive its mail. Two mails that differ only in them add nothing.
    caches = (compose._quoted_printable_line, compose._wrapped_line)
    for cache in caches:
        cache.cache_clear()
    long_firm = "Smith & Jones Accounting and Payroll Services of Greater Montreal"  # some lines wrapped
    composer.client_request(**request_args(firm_name=long_firm))
    composer.confirmation(**confirmation_args(firm_name=long_firm, generated_password=GENERATED_PASSWORD))
    remembered = [cache.cache_info().currsize for cache in caches]
    assert all(remembered)
    other_link = LINK.replace("Zx81", "Qq42")
    wire = to_bytes(composer.client_request(**request_args(firm_name=long_firm, link=other_link)))
    assert other_link.encode() in wire.replace(b"=\r\n", b"")
    wire = to_bytes(composer.confirmation(**confirmation_args(firm_name=long_firm, generated_password="Zz9-other-pw")))
    assert b"Zz9-other-pw" in wire
    assert [cache.cache_info().currsize for cache in caches] == remembered
