"""The two mails every request sends, byte for byte: the client's request
mail and the sender's confirmation, for each shape they come in, compared
with the bytes kept in tests/data/composed/. Whatever is done to make
composing cheaper, nothing a reader or a mail client gets may change.

Two things differ from mail to mail by design and are set aside: the
MIME boundary (random, the same length each time) and the Message-ID.

After a deliberate change of a mail: `.venv/bin/python tests/test_compose_bytes.py`
writes the files again (look at the diff before committing it)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.outbound.compose import Composer, to_bytes
from gateway.outbound.words import words

pytestmark = pytest.mark.no_database

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "tests" / "data" / "composed"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
LINK = "https://pay.clienttrack.test/r/Zx81kQmP0aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
HOSTILE = '<script>alert("x")</script> & \'quotes\' \r\nBcc: evil@x\u202e\u2028\x0b'


def _client(lang: str = "en", minor: int = 125000, currency: str = "CAD", **overrides) -> dict:
    """As gateway/outbound/clientmail.py asks for it: amount and dates written in the client's language."""
    w = words(lang)
    args = dict(firm_name="Smith & Jones Accounting", firm_domain="smith.clienttrack.test",
                staff_email="anna@smith.example", staff_name="Anna Lee", client_email="jane@client.example",
                title="", invoice="1042", amount=w.amount(minor, currency), hint="Dog's name", link=LINK,
                expires_on=w.date(date(2026, 4, 1)), now=NOW, card_fee="", kind="payment", lang=w.lang,
                upload_items=(), can_reply=False, reminder_of="")
    args.update(overrides)
    return args


def _confirmation(**overrides) -> dict:
    """As gateway/handlers/request.py's rows_naming asks for it."""
    args = dict(firm_name="Smith & Jones Accounting", firm_domain="smith.clienttrack.test",
                staff_email="anna@smith.example", client_email="jane@client.example", title="", invoice="1042",
                amount="$1,250.00 CAD", hint="Dog's name", expires_on="2026-04-01",
                attachment_names=["invoice-1042.pdf"], generated_password=None,
                in_reply_to="<CAB123@mail.smith.example>", request_ref="R4711", now=NOW, card_fee="",
                kind="payment", extra_rows=[])
    args.update(overrides)
    return args


FR = words("fr")

# name: (the client's mail, the confirmation)
SHAPES: dict[str, tuple[dict, dict]] = {
    "plain": (_client(), _confirmation()),
    "no-attachments-no-hint": (_client(hint=""), _confirmation(attachment_names=[], hint="")),
    "fee-title-generated-password": (
        _client(title="March bookkeeping and payroll, Q1 2026", minor=9875, currency="USD",
                card_fee="Paying by credit card adds a card fee of $2.96 (total $101.71); "
                         "no fee on debit or prepaid cards."),
        _confirmation(title="March bookkeeping and payroll, Q1 2026", amount="$98.75 USD",
                      attachment_names=["invoice-1042.pdf", "statement march.pdf", "receipt.png"],
                      generated_password="k7Q-pv9x-M2rT-wq4H",
                      card_fee="passed on to the client: 3 % on credit cards",
                      extra_rows=[("Client's language", "English")])),
    "french": (
        _client("fr", title="Déclaration 2025 — été", firm_name="Cabinet Éric Lévesque CPA",
                staff_name="Éric Lévesque", hint="Nom du chien",
                card_fee="Payer par carte de crédit ajoute des frais de carte de 36,25\u00a0$ CAD"),
        _confirmation(firm_name="Cabinet Éric Lévesque CPA", title="Déclaration 2025 — été",
                      amount=FR.amount(125000, "CAD"), extra_rows=[("Client's language", "French")])),
    "message-uploads-reminder": (
        _client(kind="message", amount="", invoice="", title="Your 2025 tax return",
                upload_items=("T4 slips", "signed engagement letter"), can_reply=True,
                reminder_of="February 27, 2026"),
        _confirmation(kind="message", amount="", invoice="", title="Your 2025 tax return",
                      extra_rows=[("Documents asked", "T4 slips; signed engagement letter"),
                                  ("Reminders", "none (remind=no)")])),
    "french-message": (
        _client("fr", kind="message", amount="", invoice="", upload_items=("Relevé 1", "Feuillets T4"),
                can_reply=True, reminder_of=FR.date(date(2026, 2, 27))),
        _confirmation(kind="message", amount="", invoice="", attachment_names=[])),
    "hostile-values": (
        _client(firm_name="Smith" + HOSTILE, staff_name="Anna" + HOSTILE, title="March" + HOSTILE,
                hint="Dog" + HOSTILE, invoice="A-7/2026 <b>", card_fee="fee" + HOSTILE,
                upload_items=("T4" + HOSTILE, "  ", "letter"), kind="message", can_reply=True),
        _confirmation(firm_name="Smith" + HOSTILE, title="March" + HOSTILE, hint="Dog" + HOSTILE,
                      invoice="A-7/2026 <b>", attachment_names=["a<b>.pdf", HOSTILE, ""],
                      in_reply_to="no brackets@host", request_ref="R1" + HOSTILE,
                      extra_rows=[("Documents asked" + HOSTILE, "x" + HOSTILE)])),
    "quoted-names-long-subject": (
        _client(firm_name='Smith, "Jones" & Co.', staff_name="Lee, Anna (tax)", title="x" * 300,
                invoice="1042 =?utf-8?q?not_a_word?=", amount="$1,250.00  CAD"),
        _confirmation(firm_name='Smith, "Jones" & Co.', title="x" * 300, invoice="1042 =?utf-8?q?not_a_word?=",
                      in_reply_to="")),
    "long-words-and-non-ascii-subject": (
        _client(firm_name="Ÿ" * 40, title="Überweisung " + "ä" * 90 + " " + "y" * 120,
                hint="a " * 60 + "\t tab", staff_name="Zoë"),
        _confirmation(title="Überweisung " + "ä" * 90 + " " + "y" * 120, hint="a " * 60,
                      attachment_names=["n" * 200 + ".pdf"])),
    "left-to-the-email-package": (
        _client(firm_name="数字会计事务所" * 6, staff_name="王小明"),
        _confirmation(firm_name="数字会计事务所" * 6)),
}

_BOUNDARY = re.compile(rb'boundary="([^"]+)"')
_MESSAGE_ID = re.compile(rb"^Message-ID: <[^>\r\n]+>\r\n", re.MULTILINE)


def _steady(wire: bytes) -> bytes:
    """The mail with its boundary and Message-ID, random by design, written the same each time."""
    boundary = _BOUNDARY.search(wire).group(1)
    wire = wire.replace(boundary, b"BOUNDARY")
    wire, found = _MESSAGE_ID.subn(b"Message-ID: <MESSAGE-ID@gw.clienttrack.test>\r\n", wire)
    assert found == 1
    return wire


def _made(shape: str) -> dict[str, bytes]:
    composer = Composer(ROOT / "templates" / "email", hostname="gw.clienttrack.test")
    client, confirmation = SHAPES[shape]
    return {f"{shape}.client.eml": _steady(to_bytes(composer.client_request(**client))),
            f"{shape}.confirmation.eml": _steady(to_bytes(composer.confirmation(**confirmation)))}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_mails_are_the_bytes_kept(shape):
    for name, wire in _made(shape).items():
        assert wire == (KEPT / name).read_bytes(), name


def test_each_mail_is_made_twice_the_same():
    # The kept bytes could not catch a cache that answered one mail with another's.
    composer = Composer(ROOT / "templates" / "email", hostname="gw.clienttrack.test")
    for shape, (client, confirmation) in SHAPES.items():
        for _ in range(2):
            assert _steady(to_bytes(composer.client_request(**client))) == (KEPT / f"{shape}.client.eml").read_bytes()
            assert _steady(to_bytes(composer.confirmation(**confirmation))) == \
                (KEPT / f"{shape}.confirmation.eml").read_bytes()


if __name__ == "__main__":
    KEPT.mkdir(parents=True, exist_ok=True)
    for shape in SHAPES:
        for name, wire in _made(shape).items():
            (KEPT / name).write_bytes(wire)
            print(KEPT / name, len(wire))
