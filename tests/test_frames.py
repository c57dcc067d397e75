"""The two mails of every request come from template frames
(gateway/outbound/frames.py): a template rendered once for a shape of mail,
the next mails of that shape filled in. A reader must get exactly what the
templates render for each mail, whatever its values; and a template that
uses a value otherwise than writing it (pads, measures, changes or tests
it) must be rendered as always.

The mail as the templates render it is the first mail of its shape from a
new Composer: that one is rendered, and only then is its frame made."""

from __future__ import annotations

import random
import re
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.outbound.compose import Composer, to_bytes
from gateway.outbound.words import words

pytestmark = pytest.mark.no_database

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"
HOSTNAME = "gw.clienttrack.test"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5)))

# Values HTML escapes, a marker's own characters, format braces, non-ASCII.
ODD = ['Smith & Jones <Accounting>', 'O\'Brien "Tax" {0} %s {firm}', "Cabinet Éric Lévesque CPA",
       "\ue000<\ue100a\ue001 Co", "数字会计事务所", "a&amp;b", "x" * 90]


def _values(chance: random.Random, invoice_length: int) -> dict:
    """One mail's values; ``invoice_length`` 0 for none, and an invoice with
    a space (the commands name the request then)."""
    def some() -> str:
        return chance.choice(ODD) + chance.choice(["", " ", "'s", " <b>"]) + str(chance.randrange(1000))

    invoice = "".join(chance.choice("0123456789ABZ-/<&") for _ in range(invoice_length))
    return dict(firm=some(), staff=some(), title=chance.choice([some(), "y" * 200 + some()]), hint=some(),
                invoice=invoice, minor=chance.randrange(1, 10**9), fee=some(), uploads=[some() for _ in range(3)],
                attachments=[some() + ".pdf" for _ in range(3)], password="k7Q-pv9x-" + str(chance.randrange(10**6)),
                ref=f"R{chance.randrange(10**5, 10**6)}", token="".join(chance.choice("abcXYZ019") for _ in range(43)))


def _mails(composer: Composer, shape: dict, values: dict) -> list[bytes]:
    lang, kind = shape["lang"], shape["kind"]
    w = words(lang)
    message = kind == "message"
    client = composer.client_request(
        firm_name=values["firm"], firm_domain="smith.clienttrack.test", staff_email="anna@smith.example",
        staff_name=values["staff"], client_email="jane@client.example", title=values["title"] if shape["title"] else "",
        invoice=values["invoice"], amount="" if message else w.amount(values["minor"], "CAD"),
        hint=values["hint"] if shape["hint"] else "", link=f"https://pay.clienttrack.test/r/{values['token']}",
        expires_on=w.date(date(2026, 4, 1)), now=NOW, card_fee=values["fee"] if shape["fee"] else "", kind=kind,
        lang=w.lang, upload_items=tuple(values["uploads"][:shape["uploads"]]), can_reply=shape["uploads"] > 0,
        reminder_of=w.date(date(2026, 2, 27)) if shape["reminder"] else "")
    confirmation = composer.confirmation(
        firm_name=values["firm"], firm_domain="smith.clienttrack.test", staff_email="anna@smith.example",
        client_email="jane@client.example", title=values["title"] if shape["title"] else "", invoice=values["invoice"],
        amount="" if message else w.amount(values["minor"], "CAD"), hint=values["hint"] if shape["hint"] else "",
        expires_on="2026-04-01", attachment_names=values["attachments"][:shape["attachments"]],
        generated_password=values["password"] if shape["password"] else None, in_reply_to="<CAB1@mail.example>",
        request_ref=values["ref"], now=NOW, card_fee=values["fee"] if shape["fee"] else "", kind=kind,
        extra_rows=[("Documents asked", "; ".join(values["uploads"][:shape["uploads"]]))] if shape["uploads"] else [])
    return [_steady(to_bytes(client)), _steady(to_bytes(confirmation))]


_BOUNDARY = re.compile(rb'boundary="([^"]+)"')
_MESSAGE_ID = re.compile(rb"^Message-ID: <[^>\r\n]+>\r\n", re.MULTILINE)


def _steady(wire: bytes) -> bytes:
    """The mail with its boundary and Message-ID, random by design, written the same each time."""
    wire = wire.replace(_BOUNDARY.search(wire).group(1), b"BOUNDARY")
    return _MESSAGE_ID.sub(b"Message-ID: <ID>\r\n", wire)


def _shapes() -> list[dict]:
    """Every language and kind, with and without each part, invoices of
    lengths around the commands' padding ("%-18s" of "status <invoice>")."""
    chance = random.Random(18)
    shapes = []
    for lang in ("en", "fr"):
        for kind in ("payment", "message"):
            for _ in range(12):
                shapes.append(dict(lang=lang, kind=kind, title=chance.random() < 0.5, hint=chance.random() < 0.7,
                                   fee=chance.random() < 0.5,
                                   uploads=chance.choice([0, 1, 3]), attachments=chance.choice([0, 1, 3]),
                                   password=chance.random() < 0.5, reminder=chance.random() < 0.3,
                                   invoice_length=chance.choice([0, 3, 4, 10, 11, 12, 13])))
    return shapes


def test_mails_from_frames_are_the_mails_the_templates_render():
    warm = Composer(TEMPLATES, hostname=HOSTNAME)
    chance = random.Random(4711)
    kept = warm._frames._kept
    for shape in _shapes():
        first, second = _values(chance, shape["invoice_length"]), _values(chance, shape["invoice_length"])
        _mails(warm, shape, first)  # makes the frames of this shape from the first mail's values
        frames = len(kept)
        rendered = _mails(Composer(TEMPLATES, hostname=HOSTNAME), shape, second)
        assert _mails(warm, shape, second) == rendered, shape
        assert len(kept) == frames  # the second mail came from the first's frames
    assert None not in kept.values()  # and each part of every shape has one


def test_frames_hold_no_link_nor_generated_password():
    composer = Composer(TEMPLATES, hostname=HOSTNAME)
    shape = dict(lang="en", kind="payment", title=False, hint=True, fee=True, uploads=1, attachments=1, password=True,
                 reminder=False, invoice_length=4)
    values = _values(random.Random(1), 4)
    for _ in range(2):
        _mails(composer, shape, values)
    for key, frame in composer._frames._kept.items():
        held = repr(key) + "".join(frame.pieces)
        assert values["token"] not in held and values["password"] not in held


# Templates that use a value otherwise than writing it: each must give the
# bytes the template renders for every mail. (name: what the template adds)
ODD_USES = {
    "padded": '{{ "%-30s"|format(firm_name) }}|',
    "padded after joining": '{{ "%-30s"|format(firm_name ~ "") }}|',
    "upper": "{{ hint|upper }}",
    "length": "{{ hint|length }}",
    "length of its text": "{{ (hint ~ '')|length }}",
    "cut": "{{ (firm_name ~ '')[:12] }}",
    "cut far on": "{{ (firm_name ~ '')[:60] }}",  # past the first mail's and the made-up values' lengths
    "truncated": "{{ firm_name|truncate(20) }}",
    "compared": '{% if hint == "Dog" %}dog{% endif %}',
    "compared as text": '{% if (hint ~ "") == "Dog" %}dog{% endif %}',  # the first mail's hint is "Dog"
    "searched": '{% if "o" in hint %}o{% endif %}',
    "centered sentence": '{{ w("questions", staff=staff_name, firm=firm_name)|center(200) }}',
    "type tested": "{% if hint is string %}text{% endif %}",
    "url-encoded": "{{ link|urlencode }}",
    "replaced": '{{ firm_name|replace("&", "and") }}',
    "a format spec": '{{ "{:>30}".format(firm_name) }}',
    "escaped": "{{ firm_name|e }}",
    "marked safe": "{{ firm_name|safe }}",  # raw, in the HTML part too
}


def _with(folder: Path, part: str, extra: str) -> None:
    """The client's mail's ``part`` template with ``extra`` at the end of
    what it writes (in the HTML part: inside its content block)."""
    template = folder / f"client_request.{part}"
    text = template.read_text(encoding="utf-8")
    if part == "html":
        text = text.replace("{% endblock %}", extra + "\n{% endblock %}", 1)
    else:
        text += extra + "\n"
    template.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("use", list(ODD_USES))
@pytest.mark.parametrize("part", ["txt", "html"])
def test_a_template_that_uses_a_value_otherwise_is_rendered_as_always(tmp_path, use, part):
    folder = tmp_path / "email"
    shutil.copytree(TEMPLATES, folder)
    _with(folder, part, ODD_USES[use])
    shape = dict(lang="en", kind="payment", title=False, hint=True, fee=False, uploads=0, attachments=1, password=False,
                 reminder=False, invoice_length=4)
    warm = Composer(folder, hostname=HOSTNAME)
    chance = random.Random(use)
    first = dict(_values(chance, 4), firm="Smith Tax", hint="Dog", staff="Anna")  # letters only, short
    _mails(warm, shape, first)
    frames = len(warm._frames._kept)
    assert _mails(warm, shape, first) == _mails(Composer(folder, hostname=HOSTNAME), shape, first), use
    for firm, hint in [("Smith & Jones <b>", "o" * 45), ("Abc", "Dog"),
                       ("Lévesque, Tremblay, Gagnon and Associates, Chartered Accountants of Québec City", "Cat")]:
        values = dict(_values(chance, 4), firm=firm, hint=hint)
        assert _mails(warm, shape, values) == _mails(Composer(folder, hostname=HOSTNAME), shape, values), use
    assert len(warm._frames._kept) == frames  # all of one shape


def test_a_template_loaded_again_makes_its_own_frames(tmp_path):
    # The templates are compiled once a process (compose._environment);
    # should one be loaded again, its frames are not the old one's.
    folder = tmp_path / "email"
    shutil.copytree(TEMPLATES, folder)
    composer = Composer(folder, hostname=HOSTNAME)
    shape = dict(lang="en", kind="payment", title=False, hint=True, fee=False, uploads=0, attachments=1, password=False,
                 reminder=False, invoice_length=4)
    values = _values(random.Random(2), 4)
    before = _mails(composer, shape, values)
    template = folder / "client_request.txt"
    template.write_text(template.read_text(encoding="utf-8") + "Changed.\n", encoding="utf-8")
    assert _mails(composer, shape, values) == before  # not read again
    composer._env.cache.clear()
    after = _mails(composer, shape, values)
    assert b"Changed." in after[0] and after[1] == before[1]
