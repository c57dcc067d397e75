"""The directive grammar: payment requests and commands, read from subject and body."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from gateway.commands.registry import parse_command
from gateway.mail.context import Command
from gateway.mail.directives import DirectivesRejected, generate_password, parse_request

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
GENERATED = "made-for-you"
# Enough for a valid request, to add to a case that tests something else.
CLIENT_AND_PW = "to=jane@client.example pw=Blue42"


def parse(subject, body="", **overrides):
    options = dict(
        firm_currency="CAD",
        limit_minor=None,
        default_fee=False,
        now=NOW,
        generate_password=lambda: GENERATED,
    )
    return parse_request(subject, body, **(options | overrides))


def rejection(subject, body="", **overrides):
    with pytest.raises(DirectivesRejected) as caught:
        parse(subject, body, **overrides)
    return caught.value


# --- requests that parse ----------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        pytest.param(
            "Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint=\"Dog's name\" +fee",
            "",
            dict(client="jane@client.example", amount_minor=125000, currency="CAD",
                 invoice="1042", password="Blue42", password_generated=False,
                 hint="Dog's name", pass_fee=True, title="Invoice 1042"),
            id="design-example-1",
        ),
        pytest.param(
            "amount=99.95 currency=USD invoice=INV-7 to=bob@client.example "
            'password="two words" hint=Sky',
            "",
            dict(client="bob@client.example", amount_minor=9995, currency="USD",
                 invoice="INV-7", password="two words", hint="Sky", pass_fee=False, title=""),
            id="design-example-2",
        ),
        pytest.param(f"1250 CAD {CLIENT_AND_PW}", "",
                     dict(amount_minor=125000, currency="CAD"), id="amount-then-code"),
        pytest.param(f"CAD 1,250.00 {CLIENT_AND_PW}", "",
                     dict(amount_minor=125000, currency="CAD"), id="code-then-amount"),
        pytest.param(f"1250.00 USD {CLIENT_AND_PW}", "",
                     dict(amount_minor=125000, currency="USD"), id="code-sets-currency"),
        pytest.param(f"$1,250.00 usd {CLIENT_AND_PW}", "",
                     dict(amount_minor=125000, currency="USD"), id="symbol-and-code"),
        pytest.param(f"amount=1000 currency=JPY {CLIENT_AND_PW}", "",
                     dict(amount_minor=1000, currency="JPY"), id="jpy-no-decimals"),
        pytest.param(f'amount="1,250.00 EUR" {CLIENT_AND_PW}', "",
                     dict(amount_minor=125000, currency="EUR"), id="quoted-amount-with-code"),
        pytest.param(f"Please pay $40. {CLIENT_AND_PW}", "",
                     dict(amount_minor=4000, title="Please pay"), id="amount-ends-sentence"),
        pytest.param(f"FYI tax 2025 $5 {CLIENT_AND_PW}", "",
                     dict(amount_minor=500, currency="CAD", title="FYI tax 2025"),
                     id="bare-words-stay-text"),
        pytest.param(f"Invoice #1042 $5 {CLIENT_AND_PW}", "",
                     dict(invoice="1042", title="Invoice #1042"), id="invoice-hash-number"),
        pytest.param(f"#1042 $5 {CLIENT_AND_PW}", "",
                     dict(invoice="1042", title="#1042"), id="hash-number"),
        pytest.param(f"inv=1042 $5 {CLIENT_AND_PW}", "", dict(invoice="1042"), id="inv-key"),
        pytest.param(f"invoice Q1-2026 $5 {CLIENT_AND_PW}", "",
                     dict(invoice="Q1-2026"), id="invoice-word-lowercase"),
        pytest.param("Fees $5 Jane@Client.Example pw=Blue42", "",
                     dict(client="jane@client.example", title="Fees"), id="bare-address"),
        pytest.param("$5 client=<JANE@client.example> pw=Blue42", "",
                     dict(client="jane@client.example"), id="client-key-lowercased"),
        pytest.param("$5 to=jane@client.example jane@client.example pw=Blue42", "",
                     dict(client="jane@client.example"), id="same-address-twice"),
        pytest.param("AMOUNT=5 To=jane@client.example PW=Blue42 FEE=yes", "",
                     dict(amount_minor=500, password="Blue42", pass_fee=True),
                     id="keys-any-case"),
        pytest.param("$5 to=jane@client.example pw=“two words” hint=“Dog’s name”", "",
                     dict(password="two words", hint="Dog’s name"), id="curly-quotes"),
        pytest.param("$5 to=jane@client.example pw=“two words“", "",
                     dict(password="two words"), id="curly-quote-closed-by-opener"),
        pytest.param("$5 to=jane@client.example pw=auto", "",
                     dict(password=GENERATED, password_generated=True), id="pw-auto"),
        pytest.param(f"$5 fee=off {CLIENT_AND_PW}", "", dict(pass_fee=False), id="fee-off"),
        pytest.param(f"$5 fee=TRUE {CLIENT_AND_PW}", "", dict(pass_fee=True), id="fee-true"),
        pytest.param(f"$5 expires=14d {CLIENT_AND_PW}", "",
                     dict(expires_at=NOW + timedelta(days=14)), id="expires-days"),
        pytest.param(f"$5 expires=2026-12-31 {CLIENT_AND_PW}", "",
                     dict(expires_at=datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
                     id="expires-date"),
        pytest.param(f"$5 expires=2026-03-01 {CLIENT_AND_PW}", "",
                     dict(expires_at=datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone.utc)),
                     id="expires-end-of-today"),
        pytest.param(f"$5 {CLIENT_AND_PW}", "",
                     dict(expires_at=NOW + timedelta(days=30)), id="expires-default"),
        pytest.param(f"Re: Fwd: AW: Invoice 7 $5 {CLIENT_AND_PW}", "",
                     dict(title="Invoice 7"), id="reply-prefixes-not-in-title"),
        pytest.param(f"Invoice   7  $5  {CLIENT_AND_PW}", "",
                     dict(title="Invoice 7"), id="title-single-spaces"),
        pytest.param(
            "Quarterly fees",
            "To: bob@client.example\nAmount: 99.95\nPassword: two words\nHint: Sky\n"
            "Invoice: 7\nFee: yes\nCurrency: USD\nExpires: 14d\n\nHello Bob,\nsee attached.\n",
            dict(client="bob@client.example", amount_minor=9995, currency="USD",
                 password="two words", hint="Sky", invoice="7", pass_fee=True,
                 expires_at=NOW + timedelta(days=14), title="Quarterly fees",
                 message="Hello Bob,\nsee attached."),
            id="body-key-lines",
        ),
        pytest.param("$99.95 to=bob@client.example", "\n\nAMOUNT: 99.95\nPW: Blue42\nHi",
                     dict(amount_minor=9995, password="Blue42", message="Hi"),
                     id="body-agrees-with-subject"),
        pytest.param("$5 to=bob@client.example", 'Hint: "Dog\'s name"\nPassword: "a b"\n',
                     dict(hint="Dog's name", password="a b", message=""),
                     id="body-quoted-values"),
        pytest.param(f"$5 {CLIENT_AND_PW}", "Note: hello\nAmount: 7\n",
                     dict(amount_minor=500, message="Note: hello\nAmount: 7"),
                     id="body-key-lines-end-at-unknown-key"),
        pytest.param(f"$5 {CLIENT_AND_PW}", "Hello,\r\nthanks.\r\n-- \r\nAnn Smith\r\nFirm",
                     dict(message="Hello,\nthanks."), id="signature-dash-dash-space"),
        pytest.param(f"$5 {CLIENT_AND_PW}", "Hello\n--\nAnn", dict(message="Hello"),
                     id="signature-dash-dash"),
        pytest.param(f"$5 {CLIENT_AND_PW}", "Totals:\n--- 5 ---\nend",
                     dict(message="Totals:\n--- 5 ---\nend"), id="dashes-not-a-signature"),
    ],
)
def test_parse_request(subject, body, expected):
    directives = parse(subject, body)
    assert {name: getattr(directives, name) for name in expected} == expected


def test_fee_defaults_to_the_firm_choice():
    assert parse(f"$5 {CLIENT_AND_PW}", default_fee=True).pass_fee is True
    assert parse(f"$5 fee=no {CLIENT_AND_PW}", default_fee=True).pass_fee is False


def test_default_ttl_is_the_callers():
    directives = parse(f"$5 {CLIENT_AND_PW}", default_ttl_days=7)
    assert directives.expires_at == NOW + timedelta(days=7)


def test_amount_at_the_limit_is_allowed():
    assert parse(f"$5,000.00 {CLIENT_AND_PW}", limit_minor=500000).amount_minor == 500000


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        parse(f"$5 {CLIENT_AND_PW}", now=NOW.replace(tzinfo=None))


# --- requests that are refused ---------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "options", "directive", "phrase"),
    [
        pytest.param(CLIENT_AND_PW, "", {}, "amount", "no amount", id="no-amount"),
        pytest.param(f"amount=12.345 {CLIENT_AND_PW}", "", {}, "amount", "at most 2 decimals",
                     id="too-many-decimals"),
        pytest.param(f"amount=0 {CLIENT_AND_PW}", "", {}, "amount", "more than zero", id="zero"),
        pytest.param(f"amount=-5 {CLIENT_AND_PW}", "", {}, "amount", "more than zero",
                     id="negative"),
        pytest.param(f"-5 CAD {CLIENT_AND_PW}", "", {}, "amount", "more than zero",
                     id="negative-with-code"),
        pytest.param(f"$1,00.00 {CLIENT_AND_PW}", "", {}, "amount", "every 3 digits",
                     id="misplaced-separator"),
        pytest.param(f"amount=10.5 currency=JPY {CLIENT_AND_PW}", "", {}, "amount",
                     "no decimals", id="jpy-decimals"),
        pytest.param(f"€5 {CLIENT_AND_PW}", "", {}, "amount", "not the sign of CAD",
                     id="symbol-of-another-currency"),
        pytest.param(f'amount="5 6 7" {CLIENT_AND_PW}', "", {}, "amount", "not understood",
                     id="amount-shape"),
        pytest.param(f"$5,000.01 {CLIENT_AND_PW}", "", dict(limit_minor=500000), "amount",
                     "over your firm's limit of $5,000.00 CAD", id="over-limit"),
        pytest.param(f"1,000,000 JPY {CLIENT_AND_PW}", "", dict(limit_minor=500000), "amount",
                     "limit of $5,000.00 CAD", id="over-limit-other-currency"),
        pytest.param(f"$5 {CLIENT_AND_PW}", "Amount: 6", {}, "amount",
                     "two different amounts", id="amounts-disagree"),
        pytest.param(f"amount=5 currency=ABC {CLIENT_AND_PW}", "", {}, "currency",
                     "not a currency", id="unknown-currency"),
        pytest.param(f"$5 currency=XYZ {CLIENT_AND_PW}", "", {}, "currency",
                     "not a currency", id="unknown-currency-key"),
        pytest.param(f'amount="5 ABC" {CLIENT_AND_PW}', "", {}, "currency", "not a currency",
                     id="unknown-code-beside-amount"),
        pytest.param(f"1250 USD currency=CAD {CLIENT_AND_PW}", "", {}, "currency",
                     "two different currencies", id="currencies-disagree"),
        pytest.param("$5 to=ann@a.example bob@b.example pw=Blue42", "", {}, "to",
                     "two different client addresses", id="two-addresses"),
        pytest.param("$5 ann@a.example bob@b.example pw=Blue42", "", {}, "to",
                     "two different client addresses", id="two-bare-addresses"),
        pytest.param("$5 to=ann@a.example pw=Blue42", "To: bob@b.example", {}, "to",
                     "two different client addresses", id="subject-and-body-addresses"),
        pytest.param("$5 to=jane@ pw=Blue42", "", {}, "to", "not a complete email address",
                     id="address-no-domain"),
        pytest.param("$5 to=jane pw=Blue42", "", {}, "to", "not a complete email address",
                     id="address-no-at"),
        pytest.param('$5 to="a b@c.example" pw=Blue42', "", {}, "to",
                     "not a complete email address", id="address-with-space"),
        pytest.param("$5 to=a@c pw=Blue42", "", {}, "to", "not a complete email address",
                     id="address-no-dot"),
        pytest.param("$5 pw=Blue42", "", {}, "to", "no client address", id="no-client"),
        pytest.param("$5 to=jane@client.example", "", {}, "pw", "no password",
                     id="no-password"),
        pytest.param('$5 to=jane@client.example pw=""', "", {}, "pw", "password is empty",
                     id="empty-password"),
        pytest.param(f"$5 {CLIENT_AND_PW} password=Other1", "", {}, "pw",
                     "two different passwords", id="passwords-disagree"),
        pytest.param(f'$5 {CLIENT_AND_PW} hint="my blue42!"', "", {}, "hint",
                     "gives the password away", id="hint-contains-password"),
        pytest.param(f"Blue42 stuff $5 {CLIENT_AND_PW}", "", {}, "pw", "free text",
                     id="password-in-title"),
        pytest.param(f"$5 amuont=5 {CLIENT_AND_PW}", "", {}, "amuont", "Did you mean amount=",
                     id="unknown-key"),
        pytest.param(f'$5 {CLIENT_AND_PW} hint="Dog\'s name', "", {}, "hint",
                     "never closes", id="unclosed-quote"),
        pytest.param(f"$5 invoice=1 inv=2 {CLIENT_AND_PW}", "", {}, "invoice",
                     "two different invoice numbers", id="invoices-disagree"),
        pytest.param(f'$5 invoice="a b" {CLIENT_AND_PW}', "", {}, "invoice", "one word",
                     id="invoice-shape"),
        pytest.param(f"$5 fee=maybe {CLIENT_AND_PW}", "", {}, "fee", "yes or no",
                     id="fee-value"),
        pytest.param(f"$5 +fee fee=no {CLIENT_AND_PW}", "", {}, "fee",
                     "two different fee choices", id="fees-disagree"),
        pytest.param(f"$5 expires=2020-01-01 {CLIENT_AND_PW}", "", {}, "expires",
                     "in the past", id="past-expiry"),
        pytest.param(f"$5 expires=2026-02-28 {CLIENT_AND_PW}", "", {}, "expires",
                     "in the past", id="yesterday-expiry"),
        pytest.param(f"$5 expires=0d {CLIENT_AND_PW}", "", {}, "expires",
                     "between 1 and 365 days", id="zero-days"),
        pytest.param(f"$5 expires=366d {CLIENT_AND_PW}", "", {}, "expires",
                     "between 1 and 365 days", id="too-many-days"),
        pytest.param(f"$5 expires=soon {CLIENT_AND_PW}", "", {}, "expires", "not understood",
                     id="expiry-words"),
        pytest.param(f"$5 expires=2026-02-30 {CLIENT_AND_PW}", "", {}, "expires",
                     "not understood", id="expiry-impossible-date"),
    ],
)
def test_parse_request_refuses(subject, body, options, directive, phrase):
    errors = rejection(subject, body, **options).errors
    assert [error.directive for error in errors] == [directive]
    assert phrase.lower() in errors[0].message.lower()


def test_every_error_is_reported_at_once():
    errors = rejection("amuont=5 to=jane@ hint=blue42 expires=2020-01-01 pw=Blue42").errors
    assert {error.directive for error in errors} == {"amuont", "to", "amount", "hint", "expires"}


# --- the password stays secret ----------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "password"),
    [
        pytest.param('$5 to=jane@client.example pw=Blue42 hint="blue42"', "", "Blue42",
                     id="hint"),
        pytest.param("$5 to=Hunter2@x pw=hunter2@x", "", "hunter2@x", id="echoed-address"),
        pytest.param("$5 to=secret9 pw=secret9", "", "secret9", id="echoed-bad-address"),
        pytest.param("$5 currency=Zorro7 to=a@b.example pw=Zorro7", "", "Zorro7",
                     id="echoed-currency"),
        pytest.param("$5 expires=Tiger8 to=a@b.example pw=Tiger8", "", "Tiger8",
                     id="echoed-expiry"),
        pytest.param("$5 to=a@b.example", 'Password: "two words"\nPw: other\n', "two words",
                     id="body-passwords-disagree"),
        pytest.param("two words $5 to=a@b.example", "Password: two words\n", "two words",
                     id="in-title"),
    ],
)
def test_password_never_in_errors(subject, body, password):
    rejected = rejection(subject, body)
    shown = [str(rejected), repr(rejected)] + [repr(error) for error in rejected.errors]
    assert not [text for text in shown if password.lower() in text.lower()]


def test_password_and_message_not_in_repr():
    directives = parse(f"$5 {CLIENT_AND_PW}", "Your statement is attached.")
    assert "Blue42" not in repr(directives)
    assert "statement" not in repr(directives)
    assert directives.password == "Blue42"


def test_generated_password_is_strong_and_readable():
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert re.fullmatch(r"[a-km-np-z2-9]{4}(-[a-km-np-z2-9]{4}){3}", password)


# --- commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "command"),
    [
        ("help", Command("help", ())),
        ("Report csv last-month", Command("report", ("csv", "last-month"))),
        ("report xlsx 2026-03-01..2026-03-31 paid",
         Command("report", ("xlsx", "2026-03-01..2026-03-31", "paid"))),
        ("Re: status 1042", Command("status", ("1042",))),
        ("FWD: AW: cancel INV-7", Command("cancel", ("INV-7",))),
        ("RE:remind 1042", Command("remind", ("1042",))),
        ("refund 1042 50.00", Command("refund", ("1042", "50.00"))),
        ("USERS", Command("users", ())),
        ("grant Bob@firm.example send", Command("grant", ("Bob@firm.example", "send"))),
        ("revoke bob@firm.example", Command("revoke", ("bob@firm.example",))),
        ("setup payments", Command("setup", ("payments",))),
        ("Invoice 1042 $5 to=jane@client.example pw=Blue42", None),
        ("reporting season", None),
        ("", None),
        ("Re: ", None),
        ("Status update $5 to=jane@client.example pw=Blue42", None),
    ],
)
def test_parse_command(subject, command):
    assert parse_command(subject) == command


@pytest.mark.parametrize("subject, expected", [
    ("$10 to=a@b.example pw=Secret1 hint=Sky", "$10 to=a@b.example pw=… hint=…"),
    ('$10 password="two words" Hint="has two words" x', "$10 password=… Hint=… x"),
    ("$10 pw=“curly quoted” to=a@b.example", "$10 pw=… to=a@b.example"),
    ('$10 pw="never closed', "$10 pw=…"),
])
def test_redact_subject_hides_password_and_hint_values(subject, expected):
    from gateway.mail.directives import redact_subject

    assert redact_subject(subject) == expected


def test_customer_names_the_client_in_quickbooks():
    assert parse('$10 to=jane@client.example pw=Blue42 customer="Smith, Jane"').customer == "Smith, Jane"
    assert parse("$10 to=jane@client.example pw=Blue42").customer == ""
    with pytest.raises(DirectivesRejected) as rejected:
        parse(f'$10 to=jane@client.example pw=Blue42 customer="{"x" * 42}"')
    assert "at most 41 characters" in str(rejected.value.errors)


@pytest.mark.parametrize("subject, body, expected", [
    ("$10 to=Secret99 pw=Secret99", "", "$10 to=*** pw=…"),
    ("$10 to=secret99@x.example password=SECRET99", "", "$10 to=***@x.example password=…"),
    ("Invoice Secret99 to=a@b.example", "Password: Secret99\n\nHello", "Invoice *** to=a@b.example"),
    ("Re: $10 to=Sky pw=sky hint=Sky", "", "Re: $10 to=*** pw=… hint=…"),
    ("$10 pw=auto to=auto@x.example", "", "$10 pw=… to=auto@x.example"),
])
def test_redact_subject_hides_the_password_wherever_it_is_repeated(subject, body, expected):
    from gateway.mail.directives import redact_subject

    assert redact_subject(subject, body) == expected


def test_an_expiry_date_is_capped_like_days_and_ends_in_the_firms_zone():
    from zoneinfo import ZoneInfo

    from gateway.mail.directives import DirectivesRejected, parse_request

    tokyo = ZoneInfo("Asia/Tokyo")

    def expiry(text: str):
        return parse_request(f"$5 expires={text} {CLIENT_AND_PW}", "", firm_currency="CAD", limit_minor=None,
                             default_fee=False, now=NOW, zone=tokyo).expires_at

    assert expiry("2026-12-31") == datetime(2026, 12, 31, 23, 59, 59, tzinfo=tokyo)
    last = (NOW + timedelta(days=365)).astimezone(tokyo).date()
    assert expiry(last.isoformat()).date() == last
    for far in ((last + timedelta(days=1)).isoformat(), "9999-12-31", "0001-01-01"):
        with pytest.raises(DirectivesRejected) as rejected:
            expiry(far)
        [error] = rejected.value.errors
        assert error.directive == "expires" and ("too far off" in error.message or "past" in error.message)


def test_the_bounds_read_are_the_columns_that_store_them():
    from gateway.core.models import PaymentRequest, SealedFile
    from gateway.mail import parse, values

    requests, files = PaymentRequest._meta.fields_map, SealedFile._meta.fields_map
    assert values.MAX_HINT_LENGTH == requests["hint"].max_length
    assert values.MAX_TITLE_LENGTH == requests["title"].max_length
    assert parse.MAX_MESSAGE_ID_LENGTH == requests["source_message_id"].max_length
    assert parse.MAX_CONTENT_TYPE_LENGTH == files["content_type"].max_length
