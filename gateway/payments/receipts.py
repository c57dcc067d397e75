"""What people are told about a payment: the thank-you page's text, the
client's receipt and the staff member's notices.

The mails are :meth:`Composer.notice` messages with plain paragraphs for
now; proper templates can replace the paragraph builders here without
touching the ledger. Nothing here reads a clock or the database: callers
pass the request, its firm and ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.language import Words
from gateway.core.models import Firm, PaymentRequest
from gateway.core.money import format_display
from gateway.outbound.cleaning import address, gateway_address
from gateway.outbound.compose import Composer
from gateway.outbound.words import words

TEST_NOTE = "This was a TEST payment in the sandbox checkout: no card was charged and no money moved."

_FUNDING_WORDS = {"credit": "credit card", "debit": "debit card", "prepaid": "prepaid card"}


def reference(request: PaymentRequest) -> str:
    """The request's reference, as in the sender's confirmation ("R12")."""
    return f"R{request.id}"


def _money(minor: int | None, request: PaymentRequest) -> str:
    return format_display(minor or 0, request.currency)


def _what(request: PaymentRequest) -> str:
    return f"Invoice {request.invoice}" if request.invoice else (request.title or f"Request {reference(request)}")


def is_test(request: PaymentRequest) -> bool:
    """Paid in the sandbox: the receipt and the page say TEST."""
    return request.provider == "sandbox"


def _paid_with(request: PaymentRequest) -> str:
    return _FUNDING_WORDS.get(request.card_funding, "card or wallet")


def _date(value: datetime | None, firm: Firm) -> str:
    if value is None:
        return ""
    try:
        value = value.astimezone(ZoneInfo(firm.timezone))
    except (ZoneInfoNotFoundError, ValueError):  # an unknown zone: show UTC rather than fail a receipt
        pass
    return value.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class ThankYou:
    """What the receipt says, in the client's language: "You paid $X to
    <Firm>", the reference and the lines of what was paid. (The thank-you
    page says the same with the pages' strings: web/checkout.py.)"""

    headline: str
    reference: str
    lines: tuple[tuple[str, str], ...]
    test_mode: bool


def thank_you(request: PaymentRequest, firm: Firm, *, fee_text: str = "", w: Words | None = None) -> ThankYou:
    w = w or words(request.lang)
    total = request.total_minor if request.total_minor is not None else request.amount_minor
    lines: list[tuple[str, str]] = []
    if request.invoice:
        lines.append((w("receipt_invoice"), request.invoice))
    lines.append((w("receipt_amount"), w.amount(request.amount_minor, request.currency)))
    if request.fee_minor:
        lines.append((w("receipt_card_fee"), w.amount(request.fee_minor, request.currency)))
    if fee_text:
        lines.append((w("receipt_fee_rule"), fee_text))
    lines.append((w("receipt_total"), w.amount(total, request.currency)))
    if request.paid_at:
        lines.append((w("receipt_paid_on"), _date(request.paid_at, firm)))
    lines.append((w("receipt_reference"), reference(request)))
    if request.provider_ref:
        lines.append((w("receipt_payment_id"), request.provider_ref))
    return ThankYou(
        headline=w("receipt_headline", amount=w.amount(total, request.currency), firm=firm.name),
        reference=reference(request),
        lines=tuple(lines),
        test_mode=is_test(request),
    )


def _rows(rows: list[tuple[str, str]]) -> str:
    return "\n".join(f"{label}: {value}" for label, value in rows if value)


def _from_the_firm(message: EmailMessage, firm: Firm, staff_email: str) -> EmailMessage:
    """Mail to the client comes from the firm, like the request it answers
    ("Demo Accounting" <pay@DOMAIN>), and a reply reaches the staff member."""
    try:
        sender = gateway_address(firm.domain, firm.name)
        del message["From"]
        message["From"] = sender
        if staff_email and "Reply-To" not in message:
            message["Reply-To"] = address(staff_email)
    except ValueError:  # keep the composer's own From
        pass
    return message


def receipt(composer: Composer, request: PaymentRequest, firm: Firm, *, fee_text: str, staff_email: str,
            now: datetime) -> EmailMessage:
    """The client's receipt, in the client's language (the card-fee rule
    that applied, in that language too, is one of its lines)."""
    w = words(request.lang)
    page = thank_you(request, firm, fee_text=fee_text if request.pass_fee or request.fee_minor else "", w=w)
    total = w.amount(request.total_minor or 0, request.currency)
    paragraphs = [w("receipt_thanks", headline=page.headline)]
    if page.test_mode:
        paragraphs.insert(0, w("receipt_test_note"))
    rows: list[tuple[str, str]] = []
    funding = request.card_funding if request.card_funding in ("credit", "debit", "prepaid") else "other"
    for label, value in page.lines:
        rows.append((label, value))
        if label == w("receipt_total"):
            rows.append((w("receipt_paid_with"), w(f"paid_with_{funding}")))
    paragraphs.append(_rows(rows))
    paragraphs.append(w("receipt_keep", email=staff_email))
    subject = w("receipt_test_subject" if page.test_mode else "receipt_subject", amount=total, firm=firm.name)
    return _from_the_firm(composer.notice(firm_domain=firm.domain, to=request.client_email, subject=subject,
                                          paragraphs=paragraphs, now=now, firm_name=firm.name, words=w),
                          firm, staff_email)


def paid_notice(composer: Composer, request: PaymentRequest, firm: Firm, *, to: str, now: datetime) -> EmailMessage:
    """Tells the staff member who sent the request that it was paid."""
    test = is_test(request)
    rows = [("Client", request.client_email), ("Invoice", request.invoice),
            ("Amount", _money(request.amount_minor, request))]
    if request.fee_minor:
        rows.append(("Card fee paid by the client", _money(request.fee_minor, request)))
    rows += [("Total paid", _money(request.total_minor, request)), ("Paid with", _paid_with(request)),
             ("Reference", reference(request)), ("Payment ID", request.provider_ref)]
    if request.provider_fee_minor is not None:
        rows.append(("Processing fee", _money(request.provider_fee_minor, request)))
    if request.application_fee_minor:
        rows.append(("clienttrack fee", _money(request.application_fee_minor, request)))
    paragraphs = [f"{request.client_email} paid {_money(request.total_minor, request)} for {_what(request)}.",
                  _rows(rows)]
    if test:
        paragraphs.insert(0, TEST_NOTE)
    else:
        paragraphs.append("Stripe deposits it to your bank account; the deposit date appears in your "
                          "reports once the payout is made.")
    if request.flagged:
        paragraphs.append(f"Please check: {request.flagged}")
    subject = f"{'[TEST] ' if test else ''}Paid: {_what(request)}, {_money(request.total_minor, request)} from {request.client_email}"
    return composer.notice(firm_domain=firm.domain, to=to, subject=subject, paragraphs=paragraphs, now=now,
                           firm_name=firm.name)


def refund_receipt(composer: Composer, request: PaymentRequest, firm: Firm, *, amount_minor: int,
                   staff_email: str, now: datetime) -> EmailMessage:
    test = is_test(request)
    rows = [("Invoice", request.invoice), ("Refunded now", _money(amount_minor, request)),
            ("Refunded in all", _money(request.refunded_minor, request)),
            ("You paid", _money(request.total_minor, request)), ("Reference", reference(request))]
    paragraphs = [f"{firm.name} refunded {_money(amount_minor, request)} of your payment for {_what(request)}.",
                  _rows(rows),
                  "The refund goes back to the card or account you paid with; banks usually show it "
                  f"within 5 to 10 business days. Questions: write to {staff_email}."]
    if test:
        paragraphs.insert(0, TEST_NOTE)
    subject = f"{'[TEST] ' if test else ''}Refund: {_money(amount_minor, request)} from {firm.name}"
    return _from_the_firm(composer.notice(firm_domain=firm.domain, to=request.client_email, subject=subject,
                                          paragraphs=paragraphs, now=now, firm_name=firm.name), firm, staff_email)


def refund_notice(composer: Composer, request: PaymentRequest, firm: Firm, *, amount_minor: int, to: str,
                  now: datetime) -> EmailMessage:
    rows = [("Client", request.client_email), ("Invoice", request.invoice),
            ("Refunded now", _money(amount_minor, request)),
            ("Refunded in all", _money(request.refunded_minor, request)),
            ("Paid", _money(request.total_minor, request)), ("Status", request.status.value),
            ("Reference", reference(request))]
    paragraphs = [f"{_money(amount_minor, request)} of {_what(request)} was refunded to {request.client_email}.",
                  _rows(rows)]
    if is_test(request):
        paragraphs.insert(0, TEST_NOTE)
    subject = f"Refunded: {_what(request)}, {_money(amount_minor, request)} to {request.client_email}"
    return composer.notice(firm_domain=firm.domain, to=to, subject=subject, paragraphs=paragraphs, now=now,
                           firm_name=firm.name)


def dispute_notice(composer: Composer, request: PaymentRequest, firm: Firm, *, to: str, reason: str,
                   due_by: datetime | None, now: datetime) -> EmailMessage:
    paragraphs = [
        f"{request.client_email}'s bank opened a dispute (a chargeback) on the payment for {_what(request)}.",
        _rows([("Amount", _money(request.total_minor, request)), ("Reason", reason.replace("_", " ")),
               ("Respond by", _date(due_by, firm)), ("Reference", reference(request)),
               ("Payment ID", request.provider_ref)]),
        "Answer it with your evidence (the invoice, this client's emails) in your Stripe Dashboard, "
        "under Payments > Disputes, before the date above, or the bank decides for the client.",
    ]
    subject = f"Disputed: {_what(request)}, {_money(request.total_minor, request)} from {request.client_email}"
    return composer.notice(firm_domain=firm.domain, to=to, subject=subject, paragraphs=paragraphs, now=now,
                           firm_name=firm.name)


def flag_notice(composer: Composer, request: PaymentRequest, firm: Firm, *, to: str, problem: str,
                now: datetime) -> EmailMessage:
    paragraphs = [
        f"A payment for {_what(request)} ({request.client_email}) needs a person to look at it, "
        "so the request was not marked paid:",
        problem,
        _rows([("Reference", reference(request)), ("Request amount", _money(request.amount_minor, request)),
               ("Payment ID", request.provider_ref)]),
        "Check the payment in your Stripe Dashboard; refund it there if it should not stand.",
    ]
    subject = f"Please check: a payment for {_what(request)}"
    return composer.notice(firm_domain=firm.domain, to=to, subject=subject, paragraphs=paragraphs, now=now,
                           firm_name=firm.name)
