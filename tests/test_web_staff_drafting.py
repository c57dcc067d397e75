"""The compose form as mail: what the grammar reads back is what was typed
(the pages themselves: test_web_staff_compose.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.mail import directives
from web.staff.drafting import Draft, check, one_line, to_mail

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


def read(draft: Draft) -> directives.PaymentDirectives:
    return directives.parse_request(draft.subject, draft.body(), firm_currency="CAD", limit_minor=10_000_000,
                                    default_fee=False, now=NOW)


def test_every_field_reads_back_exactly_spaces_and_quotes_included():
    draft = Draft(client="Jane@Client.example", subject="March work", amount="1,250.00", currency="USD",
                  invoice="INV-7", password_choice="own", password=' "two words" ', hint='Dog\'s "name"',
                  message="Hello,\nTo: not a directive here\n-- \nsignature", fee=True, expires_on="2026-12-31")
    got = read(draft)
    assert (got.client, got.amount_minor, got.currency, got.invoice) == ("jane@client.example", 125000, "USD", "INV-7")
    assert got.password == '"two words"' and got.hint == 'Dog\'s "name"' and got.pass_fee
    assert got.message == "Hello,\nTo: not a directive here" and got.title == "March work"
    assert got.expires_at.date().isoformat() == "2026-12-31"


def test_a_generated_password_is_asked_for_as_by_mail():
    got = read(Draft(client="a@b.example", amount="5", password_choice="generate", expires_days="7"))
    assert got.password_generated and (got.expires_at - NOW).days == 7 and not got.pass_fee


def test_a_crafted_field_cannot_add_a_key_line():
    hint = one_line('x"\nPw: "stolen')
    assert "\n" not in hint
    errors = check(Draft(client="a@b.example", amount="5", password_choice="own", password='x"\nPw: "y'),
                   firm_currency="CAD", limit_minor=None, default_fee=False, now=NOW, ttl_days=30, commands=set())
    assert errors["password"] == ["The password must be on one line."]


def test_the_mail_is_from_the_member_to_the_gateway_with_its_files():
    draft = Draft(client="a@b.example", amount="5", subject="Été", files=[
        ("a.pdf", "application/pdf", b"%PDF"), ("odd", "multipart/mixed", b"x"), ("b", "", b"y")])
    mail = to_mail(draft, sender="s@firm.example", gateway="pay@firm.example", hostname="gw.example", now=NOW)
    assert (str(mail["From"]), str(mail["To"]), str(mail["Subject"])) == ("s@firm.example", "pay@firm.example", "Été")
    assert mail["Message-ID"].endswith("@gw.example>")
    types = [(part.get_filename(), part.get_content_type()) for part in mail.iter_attachments()]
    assert types == [("a.pdf", "application/pdf"), ("odd", "application/octet-stream"),
                     ("b", "application/octet-stream")]
