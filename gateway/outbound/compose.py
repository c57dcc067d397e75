"""Outbound mail: the client's secure payment request and the replies to staff.

Every message is built here, from the templates in ``templates/email/``:
a text part and an HTML alternative (autoescaped), UTF-8, with Date and
Message-ID set. Nothing reads a clock behind the caller's back: each method
takes ``now`` (an aware datetime) for the Date header.

Header safety: every value that reaches a header or a one-line field of the
body is first reduced to a single line (CR, LF and other control or line
separator characters become a space; bidirectional overrides are dropped),
and addresses go through :class:`email.headerregistry.Address`, so a display
name with quotes or commas is quoted and one with non-ASCII text is RFC 2047
encoded by the email package. A value can never add a header.

The client's mail never carries the password or the attachments; the
confirmation to the staff member carries a password only when the gateway
made it (``pw=auto``) and the sender has to pass it on.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import functools
import re
import secrets
import textwrap
from collections.abc import Callable
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from gateway.outbound.cleaning import (
    address, checked_link, checked_now, clean_lines, gateway_address, message_id_ref, one_line, shorten,
)
from gateway.core.language import Words
from gateway.outbound.frames import Blank, Frames, filled
from gateway.outbound.words import words

__all__ = [
    "Composed",
    "Composer",
    "DIRECTIVE_REFERENCE",
    "EXAMPLE_SUBJECT",
    "to_bytes",
]

PRODUCT = "clienttrack"

# Shown in every rejection; it is one of the examples DESIGN.md says must work.
EXAMPLE_SUBJECT = 'Invoice 1042 $1,250.00 to=jane@client.example pw=Blue42 hint="Dog\'s name" +fee'
# The same for secure@: no amount; upload= asks the client for documents.
EXAMPLE_MESSAGE_SUBJECT = ('Your 2025 tax return to=jane@client.example pw=Blue42 hint="Dog\'s name" '
                           'upload="T4 slips, signed engagement letter"')

# (ways to write it, what it does) — the short reference in a rejection.
DIRECTIVE_REFERENCE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("to=jane@client.example",), "the client's email address (required)"),
    (("amount=1250.00", "$1,250.00"), "the amount due (required)"),
    (("currency=USD",), "only if it isn't your firm's usual currency"),
    (("invoice=1042", "#1042"), "the invoice number"),
    (("pw=Blue42", "pw=auto"), "the password the client types to open the email (required); "
                              "pw=auto makes a strong one and tells only you"),
    (('hint="Dog\'s name"',), "helps the client remember the password; must not contain it"),
    (("+fee", "fee=no"), "add the card processing fee to the client's total, or not"),
    (("expires=14d", "expires=2026-12-31"), "when the link stops working (default: 30 days)"),
    (('upload="T4 slips, signed engagement letter"',), "documents the client sends back (a checklist on their page)"),
    (("remind=no",), "no automatic reminders for this one"),
    (("lang=fr",), "the client's mail and pages in French"),
)

TEXT_WIDTH = 76

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


# ---------------------------------------------------------------------------
# Plain text layout


_PREFORMATTED = re.compile(r"^ {4}\S")
_BULLET = re.compile(r"^(\s*(?:[-*•]|\d+[.)])\s+)")
_LABEL = re.compile(r"^(\s*[A-Z][A-Za-z ]{0,20}:\s{2,})\S")


T = TypeVar("T")


def _line_by_line(remembered: Callable[..., T], text: str,
                  secret_values: tuple[str, ...] | None) -> Callable[..., T]:
    """What to call for each line of ``text`` instead of ``remembered`` (a
    function of a line, under functools.lru_cache): the cached function,
    except for a line holding one of ``secret_values`` (see Composer._build),
    worked out afresh and not kept; with None, every line afresh."""
    if secret_values is None:
        return remembered.__wrapped__
    present = [value for value in secret_values if value in text]
    if not present:
        return remembered

    def each(line: str, *args: Any) -> T:
        for value in present:  # a loop, not any() a line: a hundred lines a mail
            if value in line:
                return remembered.__wrapped__(line, *args)
        return remembered(line, *args)
    return each


def _wrap_text(text: str, width: int = TEXT_WIDTH, secret_values: tuple[str, ...] | None = None) -> str:
    """Wrap long prose lines of a rendered text part. Lines indented by
    exactly four spaces are preformatted (examples to copy) and lines holding
    a URL are left whole, so neither is ever broken. A wrapped bullet or
    "Label:  value" line continues under its text. With ``secret_values``
    (see Composer._build) the wrapping of a line is remembered, unless
    the line holds one of them."""
    wrapped = _line_by_line(_wrapped_line, text, secret_values)
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width or _PREFORMATTED.match(line) or "://" in line:
            out.append(line)
        else:
            out.extend(wrapped(line, width))
    return "\n".join(out).strip("\n") + "\n"


# The long lines of a mail are mostly the same from one mail to the next
# (the firm's and the sender's names in a sentence of the template), and
# textwrap took a fifth of composing one. Keyed by the line itself: a
# line's wrapping depends on nothing else.
@functools.lru_cache(maxsize=1024)
def _wrapped_line(line: str, width: int) -> tuple[str, ...]:
    indent = line[: len(line) - len(line.lstrip(" "))]
    hang = _BULLET.match(line) or _LABEL.match(line)
    subsequent = " " * len(hang.group(1)) if hang else indent
    return tuple(
        textwrap.wrap(
            line,
            width=width,
            initial_indent="",
            subsequent_indent=subsequent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        or [""]
    )


# ---------------------------------------------------------------------------


_MACROS = "_macros.html"


@functools.cache
def _environment(folder: str) -> Environment:
    # Without auto_reload: the templates ship with the code and, like it,
    # change with a restart (jinja's default looked at each file's mtime
    # every time a mail was rendered).
    environment = Environment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=-1,
    )
    # The HTML mail's shared pieces, given to every template as `ui`: an
    # {% import %} of them in a template looked the module up again at each
    # render, comparing globals in Python (twice a mail: the mail's
    # template and base.html), a ninth of rendering a client mail's HTML.
    if (Path(folder) / _MACROS).is_file():
        environment.globals["ui"] = environment.get_template(_MACROS).module
    return environment


def templates(templates_dir: Path) -> Environment:
    """The templates of ``templates_dir``, one Environment a folder in this
    process: each template compiled once, whatever Composers use it."""
    return _environment(str(Path(templates_dir).resolve()))


def compile_all(templates_dir: Path) -> None:
    """Compile every template of ``templates_dir`` now. serve calls it
    before it forks its workers (gateway/workers.py): they inherit them
    compiled (~35 ms of CPU for the two mails of a request, which each
    worker spent at its first mail)."""
    environment = templates(templates_dir)
    for name in environment.list_templates():
        environment.get_template(name)


class Composer:
    """Builds outbound messages from the ``templates/email`` templates."""

    def __init__(self, templates_dir: Path, *, hostname: str, wire: bool = True):
        """``wire``: the client's mail and the confirmation are written
        straight to the wire (Composed); False makes them with the email
        package like every other mail (the reference tests compare with)."""
        self.wire = wire
        hostname = str(hostname).strip()
        if not _HOSTNAME.match(hostname):
            raise ValueError(f"not a usable host name for Message-IDs: {hostname!r}")
        self.hostname = hostname
        self._env = templates(templates_dir)
        self._frames = Frames()

    # -- the client's mail -------------------------------------------------

    def client_request(
        self,
        *,
        firm_name: str,
        firm_domain: str,
        staff_email: str,
        staff_name: str,
        client_email: str,
        title: str,
        invoice: str,
        amount: str,
        hint: str,
        link: str,
        expires_on: str,
        now: datetime,
        card_fee: str = "",
        kind: str = "payment",
        lang: str = "en",
        upload_items: tuple[str, ...] = (),
        can_reply: bool = False,
        reminder_of: str = "",
    ) -> Composed:
        """The secure payment request to the client (``kind`` "payment"), or
        the secure message without payment ("message": no amount, from
        secure@), in the client's language, with the values already written
        in it (amount, dates). Takes no password and no attachments, so it
        cannot carry either. ``card_fee``: what a card fee adds, when one
        may apply (the client learns it before opening). ``upload_items``:
        the documents the firm asks for; ``can_reply``: the page takes a
        reply. ``reminder_of``: the day the request was first sent, when
        this mail is a reminder of it."""
        w = words(lang)
        message = kind == "message"
        firm = one_line(firm_name)
        title, invoice, amount = one_line(title), one_line(invoice), one_line(amount)
        hint, expires_on = one_line(hint), one_line(expires_on)
        staff = address(staff_email, staff_name)
        client = address(client_email)
        link = checked_link(link)

        label = shorten(title) if title else (w("what_invoice", invoice=invoice) if invoice else "")
        if message:
            subject = w("subject_message", firm=firm, what=label) if label else w("subject_message_plain", firm=firm)
        else:
            subject = w("subject_payment", firm=firm,
                        what=w("what_amount", label=label, amount=amount) if label else amount)
        if reminder_of:
            subject = w("subject_reminder", subject=subject)

        # The mail's own values are Blanks (frames.py): the rest of the
        # context is the shape its template frame is kept for.
        rows = []
        if title and title.lower() != f"invoice {invoice}".lower():
            rows.append((w("regarding"), Blank(title)))
        if invoice:
            rows.append((w("invoice"), Blank(invoice)))
        if not message:
            rows.append((w("amount_due"), Blank(amount)))
        if card_fee and not message:
            rows.append((w("card_fee"), Blank(one_line(card_fee))))
        rows.append((w("link_expires"), Blank(expires_on)))

        if message:
            preheader = w("preheader_message", firm=firm)
        else:
            what = w("what_invoice", invoice=invoice) if invoice else w("payment")
            preheader = w("preheader_payment", what=what, amount=amount, firm=firm)
        context = dict(
            w=w,
            kind=kind,
            firm_name=Blank(firm),
            subject=Blank(subject),
            preheader=Blank(preheader),
            rows=rows,
            hint=Blank(hint),
            link=Blank(link),
            expires_on=Blank(expires_on),
            staff_name=Blank(one_line(staff_name) or staff.addr_spec),
            staff_email=Blank(staff.addr_spec),
            upload_items=[Blank(one_line(item)) for item in upload_items if one_line(item)],
            can_reply=can_reply,
            reminder_of=Blank(one_line(reminder_of)),
        )
        return self._build(
            "client_request",
            context,
            now=now,
            sender=gateway_address(firm_domain, firm, secure=message),
            to=client,
            reply_to=staff,
            subject=subject,
            auto_submitted="auto-generated",
            wire=True,
            secret_values=(link,),
        )

    # -- replies to the staff member -----------------------------------------

    def confirmation(
        self,
        *,
        firm_name: str,
        firm_domain: str,
        staff_email: str,
        client_email: str,
        title: str,
        invoice: str,
        amount: str,
        hint: str,
        expires_on: str,
        attachment_names: list[str],
        generated_password: str | None,
        in_reply_to: str,
        request_ref: str,
        now: datetime,
        card_fee: str = "",
        kind: str = "payment",
        extra_rows: list[tuple[str, str]] = (),
    ) -> Composed:
        """Tells the sender the request (or, ``kind`` "message", the secure
        message) went out; with ``pw=auto`` it is the only place the
        generated password ever appears. ``card_fee``: what became of
        ``+fee`` (passed on, or why not). ``extra_rows``: what else the
        sender asked for (documents, language, no reminders)."""
        firm = one_line(firm_name)
        client = address(client_email)
        title, invoice, amount = one_line(title), one_line(invoice), one_line(amount)
        hint, expires_on, ref = one_line(hint), one_line(expires_on), one_line(request_ref)
        if generated_password is not None:
            if not generated_password or not generated_password.isprintable() or generated_password != generated_password.strip():
                raise ValueError("generated_password must be printable, without surrounding spaces")

        message = kind == "message"
        what = f"Invoice {shorten(invoice, 60)}" if invoice else \
            ("secure message" if message else f"payment request for {amount}")
        subject = f"Sent: {what} to {client.addr_spec}"

        names = [n for n in (one_line(n) for n in attachment_names) if n]
        # The mail's own values are Blanks (frames.py), as in client_request.
        rows = [("Client", Blank(client.addr_spec))]
        if invoice:
            rows.append(("Invoice", Blank(invoice)))
        if not message:
            rows.append(("Amount", Blank(amount)))
        if card_fee:
            rows.append(("Card fee", Blank(one_line(card_fee))))
        if title and title.lower() != f"invoice {invoice}".lower():
            rows.append(("Regarding", Blank(title)))
        rows.append(("Password hint", Blank(hint or "(none)")))
        rows.append(("Link expires", Blank(expires_on)))
        rows.append(("Attachments", Blank(", ".join(names) if names else "none")))
        rows += [(one_line(label), Blank(one_line(value))) for label, value in extra_rows]
        if ref:
            rows.append(("Reference", Blank(ref)))

        key = invoice if invoice and " " not in invoice else ref
        gateway = gateway_address(firm_domain)
        commands = []
        if key:  # sized: the text part pads them ("%-18s")
            commands = [
                (Blank(f"status {key}", sized=True), "see where it stands"),
                (Blank(f"remind {key}", sized=True), "send the client the link again"),
                (Blank(f"cancel {key}", sized=True), "withdraw the request"),
            ]
        context = dict(
            firm_name=Blank(firm),
            subject=Blank(subject),
            preheader=Blank(f"Secure message sent to {client.addr_spec}." if message else
                            f"{amount} requested from {client.addr_spec}."),
            what="secure message" if message else "secure payment request",
            client_email=Blank(client.addr_spec),
            rows=rows,
            generated_password=Blank(generated_password) if generated_password is not None else None,
            gateway_address=Blank(gateway.addr_spec),
            commands=commands,
        )
        return self._reply("confirmation", context, firm_domain=firm_domain, to=staff_email, subject=subject,
                           in_reply_to=in_reply_to, now=now, wire=True,
                           secret_values=(generated_password,) if generated_password else ())

    def rejection(
        self,
        *,
        firm_domain: str,
        staff_email: str,
        original_subject_safe: str,
        errors: list[tuple[str, str]],
        in_reply_to: str,
        now: datetime,
        firm_name: str = "",
        kind: str = "payment",
    ) -> EmailMessage:
        """Names each wrong directive and shows a subject that works (for a
        secure message, ``kind`` "message", one without an amount).
        ``original_subject_safe`` must already be stripped of secrets."""
        gateway = gateway_address(firm_domain, secure=kind == "message")
        problems = [(one_line(d), one_line(m)) for d, m in errors]
        problems = [(d, m) for d, m in problems if d or m]
        n = len(problems)
        what = "secure message" if kind == "message" else "payment request"
        subject = (
            f"Not sent: {n} {'problem' if n == 1 else 'problems'} in your {what}"
            if n
            else f"Not sent: please check your {what}"
        )
        context = dict(
            firm_name=one_line(firm_name) or gateway.domain,
            subject=subject,
            what=what,
            preheader="Nothing went to the client. Here is what to fix.",
            original_subject=shorten(one_line(original_subject_safe), 200),
            errors=problems,
            example=EXAMPLE_MESSAGE_SUBJECT if kind == "message" else EXAMPLE_SUBJECT,
            reference=DIRECTIVE_REFERENCE,
            gateway_address=gateway.addr_spec,
        )
        return self._reply("rejection", context, firm_domain=firm_domain, to=staff_email, subject=subject,
                           in_reply_to=in_reply_to, now=now)

    def notice(
        self,
        *,
        firm_domain: str,
        to: str,
        subject: str,
        paragraphs: list[str],
        in_reply_to: str = "",
        now: datetime,
        firm_name: str = "",
        words: Words | None = None,
    ) -> EmailMessage:
        """A short reply from the gateway (help, delivery failures, ...), or
        a short mail to the client in the client's ``words`` (a receipt).
        Line breaks inside a paragraph are kept; lines indented by exactly
        four spaces are never re-wrapped in the text part."""
        gateway = gateway_address(firm_domain)
        subject = shorten(one_line(subject), 200) or "A message from clienttrack"
        blocks = [lines for lines in (clean_lines(p) for p in paragraphs) if lines]
        context = dict(
            firm_name=one_line(firm_name) or gateway.domain,
            subject=subject,
            preheader=(blocks[0][0].strip() if blocks else subject),
            paragraphs=blocks,
        )
        if words is not None:
            context["w"] = words
        return self._reply("notice", context, firm_domain=firm_domain, to=to, subject=subject,
                           in_reply_to=in_reply_to, now=now)

    # -- assembly ---------------------------------------------------------------

    def render(self, name: str, context: dict[str, Any],
               secret_values: tuple[str, ...] | None = None) -> tuple[str, str]:
        """(text, html) for template ``name``; text is wrapped for mail
        (``secret_values``: see _build). Blanks in ``context`` are the
        mail's own values: with ``secret_values`` (the two mails of every
        request) the templates are rendered from frames (frames.py)."""
        parts = (self._env.get_template(f"{name}.txt"), self._env.get_template(f"{name}.html"))
        if secret_values is None:
            context = filled(context)
            text, html = (template.render(**context) for template in parts)
        else:
            text, html = self._frames.render(parts, context)
        return _wrap_text(text, secret_values=secret_values), html

    def _reply(self, name: str, context: dict[str, Any], *, firm_domain: str, to: str, subject: str,
                in_reply_to: str, now: datetime, wire: bool = False,
                secret_values: tuple[str, ...] | None = None) -> Any:
        """A mail from the gateway itself to staff: marked as an automatic
        reply, so no auto-responder answers it."""
        return self._build(name, context, now=now, sender=gateway_address(firm_domain, PRODUCT), to=address(to),
                           subject=subject, auto_submitted="auto-replied", in_reply_to=in_reply_to, wire=wire,
                           secret_values=secret_values)

    def _build(
        self,
        name: str,
        context: dict[str, Any],
        *,
        now: datetime,
        sender: Address,
        to: Address,
        subject: str,
        auto_submitted: str,
        reply_to: Address | None = None,
        in_reply_to: str = "",
        wire: bool = False,
        secret_values: tuple[str, ...] | None = None,
    ) -> Any:
        """The mail as an EmailMessage, or with ``wire`` (the two mails every
        request sends) written straight to its wire form (Composed): the
        email package's header objects, content manager and generator cost
        more than the rest of making a request, Argon2id aside.

        ``secret_values``: the mail's secrets (the link, whose token opens the
        client's page; a generated password), given when the mail is one of
        those two: then what was worked out for its other lines (wrapping,
        quoted-printable) is remembered for the next mails, where the same
        template lines come again, and nothing holding a secret is. None (a
        mail whose secrets this method does not know): nothing is remembered."""
        # Every template ends with the same line, in the mail's language (English
        # unless the caller gave the client's words).
        w = context.setdefault("w", words("en"))
        context.update(lang=w.lang, sent_by=Blank(w("sent_by", firm=filled(context["firm_name"]))))
        if secret_values is not None:  # as the HTML part writes them too
            secret_values = tuple(dict.fromkeys([*secret_values, *map(str, map(escape, secret_values))]))
        text, html = self.render(name, context, secret_values)
        if wire and self.wire:
            composed = _composed(text, html, now=now, sender=sender, to=to, subject=subject,
                                 auto_submitted=auto_submitted, reply_to=reply_to, in_reply_to=in_reply_to,
                                 hostname=self.hostname, secret_values=secret_values)
            if composed is not None:
                return composed
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        if reply_to is not None:
            msg["Reply-To"] = reply_to
        msg["Subject"] = one_line(subject)
        msg["Date"] = format_datetime(checked_now(now))
        msg["Message-ID"] = make_msgid(domain=self.hostname)
        ref = message_id_ref(in_reply_to)
        if ref:
            msg["In-Reply-To"] = ref
            msg["References"] = ref
        msg["Auto-Submitted"] = auto_submitted
        if auto_submitted == "auto-replied":
            # Exchange/Outlook: no out-of-office or other automatic answers back.
            msg["X-Auto-Response-Suppress"] = "All"
        msg["MIME-Version"] = "1.0"
        msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        return msg


# Header lines up to RFC 5322's hard limit: Python's folding at 78 columns
# leaves a space before the fold when an encoded word follows, and mail
# clients then show two spaces ("Invoice 1042  — $1,250.00").
_WIRE = email.policy.SMTP.clone(max_line_length=998)


def to_bytes(msg: EmailMessage | Composed) -> bytes:
    """The message as it goes on the wire: CRLF line endings, 7-bit headers
    (non-ASCII as RFC 2047 encoded words)."""
    if isinstance(msg, Composed):
        return msg.wire
    return msg.as_bytes(policy=_WIRE)


# -- written straight to the wire ------------------------------------------------------

class Composed:
    """A mail written straight to its wire form (``wire``), with the
    envelope's addresses and the subject the outbox records. Anything else
    asked of it (a header, its parts) is asked of the EmailMessage the
    wire form reads as, parsed on first use; it is not to be changed."""

    __slots__ = ("wire", "mail_from", "rcpt_to", "subject", "_message")

    def __init__(self, wire: bytes, mail_from: str, rcpt_to: str, subject: str) -> None:
        self.wire, self.mail_from, self.rcpt_to, self.subject = wire, mail_from, rcpt_to, subject
        self._message: EmailMessage | None = None

    @property
    def message(self) -> EmailMessage:
        if self._message is None:
            self._message = email.message_from_bytes(self.wire, policy=email.policy.default)
        return self._message

    def __getitem__(self, name: str) -> Any:
        return self.message[name]

    def __contains__(self, name: str) -> bool:
        return name in self.message

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)


# RFC 5322 atext: a display name made of these and spaces needs no quotes.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
# An encoded word is at most 75 characters: "=?utf-8?b?" + base64 + "?=".
_WORD_BYTES = 45
_MAX_LINE = 998
_QP_LINE = 76


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), no character
    split: each word the longest run of whole characters within 45 bytes."""
    data, pieces = text.encode("utf-8"), []
    while len(data) > _WORD_BYTES:
        cut = _WORD_BYTES
        while data[cut] & 0xC0 == 0x80:  # inside a character: cut before it
            cut -= 1
        pieces.append(data[:cut])
        data = data[cut:]
    if data:
        pieces.append(data)
    return ["=?utf-8?b?" + base64.b64encode(piece).decode("ascii") + "?=" for piece in pieces]


def _unstructured(name: str, value: str) -> str:
    """A header line of free text (Subject): as it is when it is short
    printable ASCII that no decoder could read as an encoded word; else
    encoded words, one per folded line."""
    if _PRINTABLE_ASCII.fullmatch(value) and "=?" not in value and len(name) + 2 + len(value) <= _MAX_LINE \
            and value == value.strip() and "  " not in value:
        return f"{name}: {value}\r\n"
    return f"{name}: " + "\r\n ".join(_encoded_words(value)) + "\r\n"


def _mailbox(addr: Address) -> str | None:
    """The address as a header's value; None when it needs the email package."""
    spec = addr.addr_spec
    if not _PRINTABLE_ASCII.fullmatch(spec) or " " in spec or not spec:
        return None
    name = addr.display_name
    if not name:
        return spec
    if _ATOM_PHRASE.fullmatch(name) and name == name.strip() and "  " not in name:
        phrase = name
    elif _PRINTABLE_ASCII.fullmatch(name) and "=?" not in name:
        phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        encoded = _encoded_words(name)
        if len(encoded) > 1:  # readers differ on the space between encoded words in a phrase
            return None
        phrase = encoded[0]
    return f"{phrase} <{spec}>"


def _quoted_printable(text: str, secret_values: tuple[str, ...] | None = None) -> bytes:
    """UTF-8 text as quoted-printable with CRLF line ends and lines of at
    most 76 characters (RFC 2045), by binascii's encoder in C (the email
    package's, in Python, was a third of composing a mail). Mail clients
    decode the same text from it as from the email package's encoding.
    Line by line: with ``secret_values`` (see Composer._build) each line's
    encoding is remembered, unless the line holds one of them."""
    if "\r" in text:  # line ends at CR, LF and CRLF, as the email package splits
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the end of the last line, not a line of its own
    return b"".join(map(_line_by_line(_quoted_printable_line, text, secret_values), lines))


# binascii's encoder took 90 us for a 7 KB HTML part, and nearly every line
# of it (long, full of "=") is the template's own, the same in every mail.
# Each line is encoded on its own: the encoder keeps no state from one
# line to the next (a soft break or an escape depends on the line alone).
@functools.lru_cache(maxsize=2048)
def _quoted_printable_line(line: str) -> bytes:
    encoded = binascii.b2a_qp(line.encode("utf-8") + b"\r\n", istext=True)
    pieces = encoded.split(b"\r\n")
    if max(map(len, pieces)) <= _QP_LINE:
        return encoded
    # b2a_qp's one overrun: a space or tab that ends a line is written as
    # is, measured as one character, then escaped when the line break
    # comes ("=20"): a line of 77. A soft break before the escape keeps
    # both halves within 76.
    return b"\r\n".join(piece if len(piece) <= _QP_LINE else piece[:-3] + b"=\r\n" + piece[-3:] for piece in pieces)


def _composed(text: str, html: str, *, now: datetime, sender: Address, to: Address, subject: str,
              auto_submitted: str, reply_to: Address | None, in_reply_to: str, hostname: str,
              secret_values: tuple[str, ...] | None = None) -> Composed | None:
    """The mail _build would make, written straight to the wire; None when
    an address is of a kind left to the email package."""
    mailboxes = [_mailbox(sender), _mailbox(to), _mailbox(reply_to) if reply_to is not None else ""]
    if None in mailboxes:
        return None
    subject = one_line(subject)
    boundary = "=_" + secrets.token_hex(16)  # quoted-printable never holds "=_"
    head = [f"From: {mailboxes[0]}\r\n", f"To: {mailboxes[1]}\r\n"]
    if reply_to is not None:
        head.append(f"Reply-To: {mailboxes[2]}\r\n")
    head.append(_unstructured("Subject", subject))
    head.append(f"Date: {format_datetime(checked_now(now))}\r\n")
    head.append(f"Message-ID: {make_msgid(domain=hostname)}\r\n")
    ref = message_id_ref(in_reply_to)
    if ref:
        head.append(f"In-Reply-To: {ref}\r\nReferences: {ref}\r\n")
    head.append(f"Auto-Submitted: {auto_submitted}\r\n")
    if auto_submitted == "auto-replied":
        head.append("X-Auto-Response-Suppress: All\r\n")
    head.append(f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n')
    part = (f'--{boundary}\r\nContent-Type: text/%s; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
    if any(len(line) > _MAX_LINE for line in head):
        return None
    wire = b"".join([
        "".join(head).encode("ascii"),
        (part % "plain").encode("ascii"), _quoted_printable(text, secret_values), b"\r\n",
        (part % "html").encode("ascii"), _quoted_printable(html, secret_values), b"\r\n",
        f"--{boundary}--\r\n".encode("ascii"),
    ])
    return Composed(wire, sender.addr_spec, to.addr_spec, subject)

